"""Read the lab's state without changing it: VM addresses, lease evidence, ownership records."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from kvmtui.core.netns import in_netns
from kvmtui.lab import spec

OWNER_FILE = "owner.json"
_LEASE_RE = re.compile(r"kvmtui-lease ip=(\S+)")


@dataclass
class Owner:
    """The lab folder's marker: which prefix it belongs to and which namespaces it made.

    A namespace is recorded (with inode None) *before* it is created, then with its inode; so a
    namespace of ours left by a killed run is recognised, and one made by someone else is not.
    """

    prefix: str
    namespaces: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def load(cls, state: str) -> Owner | None:
        try:
            with open(os.path.join(state, OWNER_FILE)) as f:
                data = json.load(f)
            return cls(str(data["prefix"]), {str(k): v for k, v in data["namespaces"].items()})
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, state: str) -> None:
        path = os.path.join(state, OWNER_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump({"prefix": self.prefix, "namespaces": self.namespaces}, f, indent=1)
        os.replace(path + ".tmp", path)

    def owns(self, ns: str, inode: int | None) -> bool:
        if ns not in self.namespaces:
            return False
        rec = self.namespaces[ns]
        return rec is None or inode is None or rec == inode


def light_vm_ip(prefix: str, vm: spec.LabVm) -> str | None:
    """The IPv4 address on a light VM's eth0 (netlink, inside its namespace), or None."""
    from pyroute2 import IPRoute

    ns = spec.ns_name(prefix, vm.name)
    if not os.path.exists(f"/run/netns/{ns}"):
        return None
    with in_netns(ns):
        ipr = IPRoute()
    try:
        idx = ipr.link_lookup(ifname="eth0")
        if not idx:
            return None
        for msg in ipr.get_addr(family=2, index=idx[0]):
            addr = msg.get_attr("IFA_ADDRESS")
            if addr:
                return str(addr)
        return None
    finally:
        ipr.close()


def console_path(state: str, vm: spec.LabVm) -> str:
    return os.path.join(state, "qemu", f"{vm.name}.console.log")


def qemu_vm_ip(state: str, vm: spec.LabVm) -> str | None:
    """The address a QEMU guest reported on its serial console (its /init prints its lease)."""
    try:
        with open(console_path(state, vm), errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    found = _LEASE_RE.findall(text)
    return found[-1] if found else None


def vm_ip(prefix: str, vm: spec.LabVm) -> str | None:
    if vm.kind == "light":
        return light_vm_ip(prefix, vm)
    return qemu_vm_ip(spec.state_dir(prefix), vm)
