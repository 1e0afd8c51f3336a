"""One resolver for every command and screen: a VM by name, short lab name, tap name or MAC.

``kvmtui path``, ``trace``, ``dhcp``, ``doctor``, ``record --vm`` and the explorer's ``--vm`` all
name a VM the same way, so ``nat-light`` works wherever ``kvmtui-nat-light`` does:

- the VM's exact name;
- a namespace guest's name without its namespace prefix (``kvmtui-nat-light`` -> ``nat-light``),
  when exactly one guest ends that way;
- a NIC's tap (``vnet3``) or MAC (``52:54:00:aa:01:01``, any case): that NIC only.

A key that names nothing raises :class:`UnknownVm` whose message lists the known VMs; long keys
are shortened before they are echoed.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmtui.core.model import HostSnapshot, NicPath, Vm, VmNic

ECHO_MAX = 60


def shorten(text: str, limit: int = ECHO_MAX) -> str:
    """``text`` for an error message: one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class UnknownVm(LookupError):
    """No VM, tap or MAC by that key on this host (the message says which VMs exist)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    vm: Vm
    nics: tuple[VmNic, ...]  # the NICs the key selects (all of the VM's for a VM name)
    paths: tuple[NicPath, ...]  # their paths, in NIC order
    by_nic: bool  # the key named one NIC (tap or MAC) rather than the VM


def short_name(vm: Vm, snap: HostSnapshot) -> str:
    """The name users type: a light VM without its namespace prefix when that is unambiguous."""
    if vm.kind != "light" or "-" not in vm.name:
        return vm.name
    for i, ch in enumerate(vm.name):
        if ch != "-":
            continue
        tail = vm.name[i + 1 :]
        hits = [v for v in snap.vms if v.name == tail or v.name.endswith("-" + tail)]
        if tail and hits == [vm]:
            return tail
    return vm.name


def find_vm(snap: HostSnapshot, key: str) -> tuple[Vm, bool] | None:
    """(VM, named-by-NIC) for ``key``, or None."""
    k = key.strip()
    mac = k.lower()
    for v in snap.vms:
        if v.name == k:
            return v, False
    for v in snap.vms:
        if any(n.tap == k or n.mac == mac for n in v.nics):
            return v, True
    hits = [v for v in snap.vms if v.kind == "light" and v.name.endswith("-" + k)]
    if len(hits) == 1:
        return hits[0], False
    return None


def resolve(snap: HostSnapshot, key: str) -> Resolved:
    """The VM and NICs ``key`` names; raises :class:`UnknownVm` with a one-line message."""
    found = find_vm(snap, key)
    if found is None:
        known = ", ".join(sorted(short_name(v, snap) for v in snap.vms)) or "none"
        raise UnknownVm(f"no VM, tap or MAC {shorten(key)!r} on this host (known VMs: {known})")
    vm, by_nic = found
    k = key.strip()
    nics = vm.nics
    if by_nic:
        nics = tuple(n for n in vm.nics if n.tap == k or n.mac == k.lower())
    macs = [n.mac for n in nics]
    paths = tuple(p for m in macs for p in snap.paths if p.vm == vm.name and p.mac == m)
    return Resolved(vm=vm, nics=nics, paths=paths, by_nic=by_nic)
