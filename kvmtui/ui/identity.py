"""The one identity the panes share: a VM, a MAC, an IP or a tap, and what it resolves to.

Selecting any of them in any pane sets ``KvmApp.focus_identity``; every pane watches it and
highlights the rows that match. Resolution is done against the current snapshot, so picking a
tap also lights up its VM, the VM's MAC and its IP.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmtui.core.model import HostSnapshot


@dataclass(frozen=True, slots=True)
class Identity:
    label: str
    vm: str | None = None
    macs: frozenset[str] = frozenset()
    ips: frozenset[str] = frozenset()
    taps: frozenset[str] = frozenset()

    def matches(
        self,
        *,
        vm: str | None = None,
        mac: str | None = None,
        ip: str | None = None,
        tap: str | None = None,
    ) -> bool:
        return bool(
            (vm is not None and vm == self.vm)
            or (mac is not None and mac.lower() in self.macs)
            or (ip is not None and ip in self.ips)
            or (tap is not None and tap in self.taps)
        )


def resolve(
    snap: HostSnapshot | None,
    *,
    vm: str | None = None,
    mac: str | None = None,
    ip: str | None = None,
    tap: str | None = None,
) -> Identity:
    """Build the identity of what was picked, widened to the VM NIC it belongs to (if any)."""
    mac = mac.lower() if mac else None
    macs = {mac} if mac else set()
    ips = {ip} if ip else set()
    taps = {tap} if tap else set()
    found_vm = vm
    if snap is not None:
        for v in snap.vms:
            for nic in v.nics:
                hit = (
                    (vm is not None and v.name == vm)
                    or (mac is not None and nic.mac == mac)
                    or (tap is not None and nic.tap == tap)
                    or (ip is not None and nic.ip == ip)
                )
                if hit:
                    found_vm = v.name
                    macs.add(nic.mac)
                    if nic.ip:
                        ips.add(nic.ip)
                    if nic.tap:
                        taps.add(nic.tap)
        # a tap's own MAC (fe:54:...) and FDB owners
        for b in snap.bridges:
            for e in b.fdb:
                if e.mac in macs and e.owner.ip:
                    ips.add(e.owner.ip)
                if e.owner.kind == "host" and e.owner.nic in taps:
                    macs.add(e.mac)
    label = found_vm or mac or ip or tap or ""
    if found_vm and (mac or tap or ip):
        label = f"{found_vm} ({mac or tap or ip})"
    return Identity(
        label=label,
        vm=found_vm,
        macs=frozenset(macs),
        ips=frozenset(ips),
        taps=frozenset(taps),
    )
