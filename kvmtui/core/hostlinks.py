"""The host's links as a capture session needs them: names, MACs, kinds, masters, addresses.

Read with pyroute2 inside the host's namespace. The capture engine uses it to know which MACs
and IPs are the host's own on each bridge (who served DHCP, which frames are local) and to find
a VM's tap again when it comes back under another name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from kvmtui.capture.dhcp import HostView
from kvmtui.core.model import Network, NicPath
from kvmtui.core.netns import in_netns


@dataclass(frozen=True, slots=True)
class LinkInfo:
    name: str
    index: int
    mac: str
    kind: str | None
    master: int | None
    addresses: tuple[str, ...]


def link_info(netns: str | None) -> list[LinkInfo]:
    """Every link of ``netns`` with its addresses (pyroute2)."""
    from pyroute2 import IPRoute

    with in_netns(netns):
        ipr = IPRoute()
    try:
        links = ipr.get_links()
        addrs = ipr.get_addr()
    finally:
        ipr.close()
    by_index: dict[int, list[str]] = {}
    for a in addrs:
        by_index.setdefault(a["index"], []).append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
    out = []
    for lk in links:
        info = lk.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        out.append(
            LinkInfo(
                str(lk.get_attr("IFLA_IFNAME")),
                int(lk["index"]),
                str(lk.get_attr("IFLA_ADDRESS") or "").lower(),
                kind,
                lk.get_attr("IFLA_MASTER"),
                tuple(by_index.get(lk["index"], ())),
            )
        )
    return out


def links_or_empty(netns: str | None) -> list[LinkInfo]:
    try:
        return link_info(netns)
    except Exception:  # no such namespace, no netlink: the session says what it cannot open
        return []


def host_view(
    netns: str | None, networks: Sequence[Network] = (), links: Sequence[LinkInfo] | None = None
) -> HostView:
    """Bridges' MACs and IPs (who is the host on each bridge) and libvirt networks by bridge."""
    macs: dict[str, str] = {}
    ips: dict[str, str] = {}
    for lk in links_or_empty(netns) if links is None else links:
        if lk.kind == "bridge":
            name = str(lk.name)
            macs[str(lk.mac)] = name
            for a in lk.addresses:
                ips[str(a).split("/")[0]] = name
    nets = {n.bridge: n.name for n in networks if n.bridge and n.mode != "bridge"}
    return HostView(macs, ips, nets)


def reresolve_tap(path: NicPath, netns: str | None) -> NicPath | None:
    """``path`` with its tap (and bridge) hop pointing at the device now carrying the VM's tap
    MAC, or None when there is none yet."""
    mac = path.mac.lower()
    tap_macs = {"fe" + mac[2:], mac}
    try:
        links = link_info(netns)
    except Exception:
        return None
    names = {lk.index: lk.name for lk in links}
    for lk in links:
        if lk.mac in tap_macs and lk.kind != "bridge" and lk.master:
            tap = str(lk.name)
            br = names.get(lk.master)
            hops = []
            for h in path.hops:
                if h.role in ("tap", "macvtap"):
                    hops.append(replace(h, dev=tap))
                elif h.role == "bridge" and br:
                    hops.append(replace(h, dev=br))
                else:
                    hops.append(h)
            return replace(path, hops=tuple(hops))
    return None
