"""What the doctor reads beyond the HostSnapshot: firewall rules, bridge sysctls, dnsmasq.

Everything is read-only and from this network namespace: the nftables rules through pyroute2
(:mod:`kvmtui.doctor.fwsim`), ``/proc/sys`` for sysctls, psutil and ``/proc/PID`` for the
dnsmasq processes libvirt starts (one per network, ``--conf-file=.../NETWORK.conf``; the file
is read through ``/proc/PID/root`` so a daemon in a private mount namespace is seen as it
sees itself). A process in another network namespace (another lab, a container) is not ours.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from kvmtui.core.model import HostSnapshot
from kvmtui.doctor.fwsim import Ruleset, read_ruleset


@dataclass(frozen=True, slots=True)
class Dnsmasq:
    pid: int
    network: str  # the libvirt network its conf file is named after
    interfaces: tuple[str, ...]  # interface= lines of its conf file
    conf: str


@dataclass(frozen=True, slots=True)
class HostFacts:
    ruleset: Ruleset
    bridge_nf_call_iptables: bool | None
    dnsmasq: tuple[Dnsmasq, ...] = ()
    dnsmasq_read: bool = False  # False: processes could not be listed (checks skip)
    notes: tuple[str, ...] = ()
    admin_down: frozenset[str] = frozenset()  # links set down by an admin (IFF_UP clear)

    def dnsmasq_of(self, network: str) -> Dnsmasq | None:
        return next((d for d in self.dnsmasq if d.network == network), None)


def _sysctl(path: str) -> bool | None:
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        return None


def _netns_id(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


_CONF = re.compile(r"--conf-file=(\S+/([^/\s]+)\.conf)$")


def read_dnsmasq() -> tuple[tuple[Dnsmasq, ...], bool]:
    try:
        import psutil
    except ImportError:
        return (), False
    here = _netns_id("self")
    found: list[Dnsmasq] = []
    try:
        procs = list(psutil.process_iter(["pid", "name", "cmdline"]))
    except Exception:
        return (), False
    for p in procs:
        info = p.info
        if info.get("name") != "dnsmasq":
            continue
        pid = int(info["pid"])
        if here is not None and _netns_id(pid) != here:
            continue
        conf = net = None
        for arg in info.get("cmdline") or []:
            m = _CONF.match(arg)
            if m:
                conf, net = m.group(1), m.group(2)
        if conf is None or net is None:
            continue  # not libvirt's (the LAN's own dnsmasq, say)
        ifaces: list[str] = []
        try:
            with open(f"/proc/{pid}/root{conf}") as f:
                for line in f:
                    key, _, val = line.strip().partition("=")
                    if key == "interface" and val:
                        ifaces.append(val)
        except OSError:
            pass
        found.append(Dnsmasq(pid, net, tuple(ifaces), conf))
    return tuple(found), True


def read_admin_down() -> frozenset[str]:
    """Links whose IFF_UP flag is clear (``ip link set X down``), from /sys/class/net: tells an
    admin's "down" from a lost carrier (a guest that closed its end), which operstate does not."""
    out = set()
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return frozenset()
    for name in names:
        try:
            with open(f"/sys/class/net/{name}/flags") as f:
                if not int(f.read().strip(), 16) & 0x1:
                    out.add(name)
        except (OSError, ValueError):
            continue
    return frozenset(out)


def read_facts(snap: HostSnapshot, uri: str | None = None) -> HostFacts:
    """Read the facts the checks need (blocking, read-only, this namespace)."""
    del snap, uri  # the checks take the rest from the snapshot
    rules = read_ruleset()
    notes = [rules.problem] if rules.problem else []
    procs, ok = read_dnsmasq()
    if not ok:
        notes.append("cannot list processes: dnsmasq checks skipped")
    return HostFacts(
        ruleset=rules,
        bridge_nf_call_iptables=_sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables"),
        dnsmasq=procs,
        dnsmasq_read=ok,
        notes=tuple(notes),
        admin_down=read_admin_down(),
    )
