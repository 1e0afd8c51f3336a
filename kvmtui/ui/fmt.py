"""Small text formatters shared by the panes (pure functions, easy to test)."""

from __future__ import annotations

from collections.abc import Mapping

from kvmtui.core.model import MACVTAP_MODES, LinkStats, NetMode


def rates_between(
    before: Mapping[str, LinkStats], after: Mapping[str, LinkStats], dt: float
) -> dict[str, tuple[float, float]]:
    """(rx, tx) bytes per second of each interface in both readings, ``dt`` seconds apart (a
    counter that went backwards, a reset, counts as 0)."""
    rates: dict[str, tuple[float, float]] = {}
    for name, st in after.items():
        old = before.get(name)
        if old is not None:
            rates[name] = (
                max(0, st.rx_bytes - old.rx_bytes) / dt,
                max(0, st.tx_bytes - old.tx_bytes) / dt,
            )
    return rates


def rate(bps: float | None) -> str:
    """Bytes per second, short: '—', '0 B/s', '1.2 kB/s', '3.4 MB/s'."""
    if bps is None:
        return "—"
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if bps >= size:
            return f"{bps / size:.1f} {unit}"
    return f"{bps:.0f} B/s"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def expiry(epoch: int | None, now: float) -> str:
    if epoch is None:
        return "never"
    left = epoch - now
    if left <= 0:
        return "expired"
    if left < 60:
        return f"in {left:.0f}s"
    if left < 3600:
        return f"in {left // 60:.0f}m"
    return f"in {left / 3600:.1f}h"


MODE_LABEL: dict[str, str] = {
    "nat": "NAT",
    "route": "routed",
    "open": "open",
    "isolated": "host-only",
    "bridge": "bridged",
    "private": "private",
    "vepa": "VEPA",
    "passthrough": "passthrough",
    "hostdev": "hostdev",
    "macvtap": "macvtap",
    "direct": "direct",
    "unknown": "unknown",
}

# What each mode means for a packet, in our own words (seed sections 1.1-1.3 and 3).
MODE_EXPLAIN: dict[str, str] = {
    "bridge": (
        "Bridged: the VM sits on the LAN like one more machine. Its frame goes from the guest's "
        "NIC through its tap into the Linux bridge, which switches it out of the physical NIC "
        "unchanged: no NAT, the source IP stays the VM's own. The VM's address comes from the "
        "LAN's DHCP server (or static config), and other LAN hosts can reach it directly."
    ),
    "isolated": (
        "Host-only: the bridge is a switch with no way out. VMs on it reach each other and the "
        "host's address on the bridge, and nothing else: a ping to the Internet fails, a ping "
        "to a neighbour VM works. libvirt's dnsmasq on the bridge hands out the addresses."
    ),
    "nat": (
        "NAT: libvirt runs a small virtual router. The bridge's address is the VMs' gateway and "
        "its dnsmasq their DHCP server; packets that leave the range are masqueraded to the "
        "host's own address on its uplink. VMs reach out; outside hosts cannot reach in. "
        "Enough when a VM needs only outbound access (the hypervisors' default)."
    ),
    "route": (
        "Routed: like NAT without the masquerade. The host forwards the VMs' packets with "
        "their own source addresses, so the rest of the network needs a route back to this "
        "range through the host."
    ),
    "open": (
        "Open: libvirt routes the range but adds no firewall rules at all; what gets through "
        "is up to the host's own firewall and the routes elsewhere."
    ),
    "macvtap": (
        "macvtap/direct: the VM's NIC is stacked straight on a physical NIC, skipping the "
        "bridge; it looks like a LAN host, but it usually cannot talk to the host itself."
    ),
}


def explain(mode: str) -> str:
    if mode in MACVTAP_MODES:
        return MODE_EXPLAIN["macvtap"]
    return MODE_EXPLAIN.get(mode, f"{MODE_LABEL.get(mode, mode)}: no explanation for this mode.")


def mode_label(mode: NetMode | str) -> str:
    return MODE_LABEL.get(mode, mode)
