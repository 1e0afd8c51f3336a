"""The path each VM NIC's packets take out of the host, hop by hop, with evidence.

Pure: computed from a ``HostSnapshot`` (built without paths). Rules as data: :data:`CLASSIFY`
picks a NIC's rule (first match wins), :data:`RULES` is one row of steps per rule, and each step
adds its hops and either passes on or ends the walk with the verdict. By rule:

- bridge:   tap -> bridge -> the bridge's uplink port(s) -> LAN ("leaves through ens9 unchanged:
            no NAT"). On a VLAN-aware bridge the tap's PVID is the VM's VLAN, and each uplink
            hop says whether the frames leave it tagged, untagged or not at all; a bond uplink
            names its mode and members.
- chained:  tap -> bridge -> veth pair -> bridge -> uplink(s) -> LAN: a bridge with no uplink
            of its own that a veth pair joins to one that has (Proxmox: tapNNNiN -> fwbrNNNiN ->
            fwlnNNNiN -> fwprNNNpN -> vmbr0, the firewall bridge between the tap and vmbr0)
- nat:      tap -> bridge (the VMs' gateway) -> routing + MASQUERADE -> uplink (the default
            route's device); ip_forward 0 or a missing NAT rule close the way out
- route:    tap -> bridge -> routing (no NAT) -> uplink
- open:     likewise, and libvirt adds no firewall rules
- isolated: tap -> bridge -> end ("no way out: isolated network (no <forward>)")
- macvtap (private, vepa, passthrough, bridge, or a ``direct`` NIC): macvtap -> the host NIC,
            no tap and no bridge; a note says the host cannot reach the VM over that NIC
- hostdev:  a PCI function handed to the guest: the host's stack is not on the path
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from kvmtui.core.model import (
    MACVTAP_MODES,
    ROUTED_MODES,
    RUNNING_STATES,
    Bridge,
    Evidence,
    FdbEntry,
    Hop,
    HopRole,
    HostSnapshot,
    Link,
    Network,
    NicPath,
    Port,
    Route,
    Vm,
    VmNic,
)

# libvirt's names of macvtap modes -> the kernel's (IFLA_MACVLAN_MODE)
_LIBVIRT_MACVLAN = {"private": "private", "vepa": "vepa", "passthrough": "passthru"}
_PROXMOX_FWBR = re.compile(r"^fwbr(\d+)i(\d+)$")


class _Index:
    """Dict lookups over one snapshot: a host with 1,000 taps and 50,000 FDB entries must not
    cost a scan per NIC."""

    def __init__(self, snap: HostSnapshot) -> None:
        self.links = {lk.name: lk for lk in snap.links}
        self.bridges = {b.name: b for b in snap.bridges}
        self.networks = {n.name: n for n in snap.networks}
        self.net_by_bridge: dict[str, Network] = {}
        for n in snap.networks:
            if n.bridge and n.bridge not in self.net_by_bridge:
                self.net_by_bridge[n.bridge] = n
        self.ports = {(b.name, p.name): p for b in snap.bridges for p in b.ports}
        wanted = {nic.mac for vm in snap.vms for nic in vm.nics}
        self.fdb: dict[tuple[str, str], list[FdbEntry]] = {}
        for b in snap.bridges:
            for f in b.fdb:
                if f.mac in wanted:
                    self.fdb.setdefault((b.name, f.mac), []).append(f)
        self.by_index = {lk.index: lk.name for lk in snap.links}
        self.default_route = _default_route(snap)
        self._veth_out: dict[str, tuple[str, str, Bridge] | None] = {}

    def same_ns_peer(self, lk: Link) -> Link | None:
        """The other end of a veth whose peer is in this namespace."""
        if lk.peer_index is None or lk.peer_netns_id is not None or lk.peer_netns:
            return None
        name = self.by_index.get(lk.peer_index)
        return self.links.get(name) if name else None

    def veth_out(self, br: Bridge) -> tuple[str, str, Bridge] | None:
        """``(veth on br, its peer, the peer's bridge)`` when ``br`` has no uplink and a veth
        pair joins it to another bridge (a firewall bridge, Proxmox's fwbr); once per bridge."""
        if br.uplinks:
            return None
        if br.name not in self._veth_out:
            self._veth_out[br.name] = self._find_veth_out(br)
        return self._veth_out[br.name]

    def _find_veth_out(self, br: Bridge) -> tuple[str, str, Bridge] | None:
        for p in br.ports:
            lk = self.links.get(p.name)
            if p.kind != "veth" or lk is None:
                continue
            peer = self.same_ns_peer(lk)
            if peer is not None and peer.master and peer.master != br.name:
                far = self.bridges.get(peer.master)
                if far is not None:
                    return p.name, peer.name, far
        return None


def _default_route(snap: HostSnapshot) -> Route | None:
    for r in snap.routes:
        if r.dst in ("default", "0.0.0.0/0") and r.table in (254, 0):
            return r
    return None


# --- evidence --------------------------------------------------------------------------------


def _fmt_age(age: float | None) -> str:
    return "age unknown" if age is None else f"age {age:.0f} s"


def _ip_forward_ev(snap: HostSnapshot) -> Evidence:
    if snap.ip_forward is None:
        return Evidence("ip_forward", "unknown", None)
    return Evidence("ip_forward", "1" if snap.ip_forward else "0", snap.ip_forward)


def _route_ev(route: Route | None) -> Evidence:
    if route is None:
        return Evidence("default route", "none", False)
    via = f" via {route.gateway}" if route.gateway else ""
    return Evidence("default route", f"default{via} dev {route.dev}", True)


def _link_ev(ix: _Index, dev: str | None, what: str = "link state") -> Evidence:
    if dev is None:
        return Evidence(what, "no device", False)
    lk = ix.links.get(dev)
    if lk is None:
        return Evidence(what, f"{dev} not found", False)
    return Evidence(what, lk.state, lk.state in ("up", "unknown"))


def _port_evs(port: Port | None, name: str) -> list[Evidence]:
    if port is None:
        return [Evidence("port", f"{name} is not a port of this bridge", False)]
    stp_ok = None if port.stp_state == "unknown" else port.stp_state == "forwarding"
    return [
        Evidence("port state", port.state, port.state in ("up", "unknown")),
        Evidence("STP state", port.stp_state, stp_ok),
    ]


def _stack_evs(ix: _Index, dev: str | None) -> list[Evidence]:
    """What a device is made of: a vlan link's id and lower device, a bond's mode and members
    (the bond is up while one member is)."""
    lk = ix.links.get(dev) if dev else None
    if lk is None or lk.kind not in ("vlan", "bond"):
        return []
    out: list[Evidence] = []
    seen: set[str] = set()
    while lk is not None and lk.name not in seen:
        seen.add(lk.name)
        if lk.kind == "vlan" and lk.lower:
            out.append(Evidence("VLAN", f"{lk.name} tags VLAN {lk.vlan_id} on {lk.lower}", None))
            lk = ix.links.get(lk.lower)
            continue
        if lk.kind == "bond":
            states = [
                (m, ix.links[m].state if m in ix.links else "missing") for m in lk.bond_members
            ]
            up = [m for m, st in states if st in ("up", "unknown")]
            out.append(Evidence("bond mode", lk.bond_mode or "unknown", None))
            members = ", ".join(f"{m} {st}" for m, st in states) or "none"
            out.append(Evidence("bond members", members, bool(up)))
        break
    return out


def _dev_vlan(ix: _Index, dev: str | None) -> int | None:
    """The VLAN a vlan link (eno1.20, bond0.20) tags its frames with."""
    lk = ix.links.get(dev) if dev else None
    return lk.vlan_id if lk is not None and lk.kind == "vlan" else None


def _network_of(ix: _Index, nic: VmNic) -> Network | None:
    if nic.network:
        return ix.networks.get(nic.network)
    if nic.bridge:
        return ix.net_by_bridge.get(nic.bridge)
    return None


def _subnet(net: Network, family: str = "ipv4") -> str | None:
    for a in net.addresses:
        if a.family == family and a.address:
            return str(ipaddress.ip_network(f"{a.address}/{a.prefix}", strict=False))
    return None


# --- the walk --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _End:
    way_out: bool
    verdict: str


@dataclass(slots=True)
class _Walk:
    """One NIC's walk: what the steps read and the hops they have added so far."""

    snap: HostSnapshot
    ix: _Index
    vm: Vm
    nic: VmNic
    net: Network | None
    mode: str
    hops: list[Hop] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # what closes a routed way out
    bridge: Bridge | None = None  # the bridge the next bridge step looks at
    bridge_name: str | None = None
    entry: str | None = None  # the port frames enter that bridge on
    vlan: int | None = None  # the VLAN the frames are in, once a VLAN-aware bridge said so

    def add(
        self,
        dev: str | None,
        role: HopRole,
        evs: list[Evidence],
        ok: bool | Literal["evidence"] | None = "evidence",
        vlan: int | None = None,
        tagged: bool | None = None,
    ) -> Hop:
        """Append a hop; its ``ok`` by default: no evidence against it."""
        if ok == "evidence":
            ok = not any(e.ok is False for e in evs)
        hop = Hop(dev, role, tuple(evs), ok, vlan, tagged)
        self.hops.append(hop)
        return hop


Step = Callable[[_Walk], _End | None]


def _tap(w: _Walk) -> _End | None:
    nic = w.nic
    evs = [_link_ev(w.ix, nic.tap)] if nic.tap else [Evidence("tap", "none", False)]
    w.add(nic.tap, "tap", evs)
    w.bridge_name = nic.bridge or (w.net.bridge if w.net else None)
    w.bridge = w.ix.bridges.get(w.bridge_name) if w.bridge_name else None
    w.entry = nic.tap
    return None


def _fdb_ev(w: _Walk, br: Bridge) -> Evidence:
    mac, entry = w.nic.mac, w.entry
    if not mac:
        return Evidence("FDB", "guest MAC unknown", None)
    hits = w.ix.fdb.get((br.name, mac), [])
    f = next((f for f in hits if f.kind == "learned"), hits[0] if hits else None)
    if f is None:
        return Evidence("FDB", f"{mac} not learned (no frame from it yet)", None)
    if entry and f.port != entry:
        return Evidence("FDB", f"{mac} learned on {f.port}, not {entry}", False)
    return Evidence("FDB", f"{mac} on {f.port}, {f.kind}, {_fmt_age(f.age_s)}", True)


def _vlan_aware(br: Bridge) -> bool:
    """VLAN filtering on and the ports' VLANs read (a bridge whose ports all show none was not
    read, rather than a bridge that drops everything)."""
    return bool(br.vlan_filtering) and any(p.vlans for p in br.ports)


def _bridge(w: _Walk) -> _End | None:
    br, entry = w.bridge, w.entry
    evs: list[Evidence] = []
    if br is None:
        w.add(
            w.bridge_name,
            "bridge",
            [Evidence("bridge", f"{w.bridge_name or 'no bridge'} not found", False)],
        )
        return None
    evs.append(Evidence("bridge state", br.state, br.state in ("up", "unknown")))
    port = w.ix.ports.get((br.name, entry)) if entry else None
    if entry:
        evs.extend(_port_evs(port, entry))
    evs.append(_fdb_ev(w, br))
    if br.addresses:
        evs.append(Evidence("bridge address", ", ".join(br.addresses), None))
    if m := _PROXMOX_FWBR.match(br.name):
        w.notes.append(
            f"{br.name} is Proxmox's firewall bridge of VM {m[1]}'s net{m[2]}: pve-firewall "
            "filters the VM's frames here, before they reach the bridge behind it"
        )
    if not _vlan_aware(br) or port is None:
        w.add(br.name, "bridge", evs)
        return None
    pvid = port.pvid
    if pvid is None:
        evs.append(Evidence("VLAN", f"{entry} has no PVID: its untagged frames are dropped", False))
        w.add(br.name, "bridge", evs)
        return _End(False, f"no way out: {entry} has no PVID on VLAN-aware bridge {br.name}")
    w.vlan = pvid
    evs.append(
        Evidence(
            "VLAN", f"PVID {pvid} on {entry}: the VM's untagged frames are in VLAN {pvid}", None
        )
    )
    w.add(br.name, "bridge", evs, vlan=pvid)
    return None


def _veth_pair(w: _Walk) -> _End | None:
    """Across the veth pair that joins this bridge to the next one (fwln -> fwpr)."""
    out = w.ix.veth_out(w.bridge) if w.bridge else None
    if out is None:
        w.add(None, "end", [Evidence("uplink", "none", False)], ok=False)
        return _End(False, f"no way out: bridge {w.bridge_name} has no uplink port")
    near, far, far_br = out
    w.add(
        near,
        "veth",
        [*_port_evs(w.ix.ports.get((w.bridge_name or "", near)), near), _link_ev(w.ix, near)],
    )
    w.add(far, "veth", [_link_ev(w.ix, far), Evidence("veth peer", f"{near} <-> {far}", None)])
    w.bridge, w.bridge_name, w.entry = far_br, far_br.name, far
    return None


def _uplink_vlan(w: _Walk, br: Bridge, port: Port | None) -> tuple[Evidence | None, bool | None]:
    """How the frames of the VM's VLAN leave on an uplink port of a VLAN-aware bridge."""
    if w.vlan is None or not _vlan_aware(br) or port is None:
        return None, None
    v = next((v for v in port.vlans if v.vid == w.vlan), None)
    if v is None:
        return Evidence("VLAN", f"{w.vlan} not allowed on {port.name}: dropped", False), None
    how = "untagged" if v.untagged else "tagged"
    return Evidence("VLAN", f"{w.vlan} leaves {port.name} {how}", True), not v.untagged


def _bridge_uplinks(w: _Walk) -> _End | None:
    br = w.bridge
    ups = br.uplinks if br else ()
    if br is None or not ups:
        w.add(None, "end", [Evidence("uplink", "none", False)], ok=False)
        return _End(False, f"no way out: bridge {w.bridge_name} has no uplink port")
    good, vlan_refused = [], []
    for u in ups:
        port = w.ix.ports.get((br.name, u))
        evs = _port_evs(port, u) + _stack_evs(w.ix, u)
        vev, tagged = _uplink_vlan(w, br, port)
        if vev is not None:
            evs.append(vev)
            if not vev.ok:
                vlan_refused.append(u)
        vid = w.vlan if vev and vev.ok else None
        if vev is None and (sub := _dev_vlan(w.ix, u)) is not None:
            vid, tagged = sub, True  # a vlan link as the port (bond0.20): it tags the frames
        hop = w.add(u, "uplink", evs, vlan=vid, tagged=tagged)
        if hop.ok:
            good.append(u)
    src = w.nic.ip or "the VM's address"
    w.add(None, "lan", [Evidence("NAT", f"none: source IP stays {src}", None)], ok=True)
    names = ", ".join(ups)
    if not good and vlan_refused == list(ups):
        return _End(False, f"no way out: VLAN {w.vlan} is not allowed on uplink port {names}")
    if not good:
        return _End(False, f"no way out: uplink port {names} is down or blocked")
    vids = {h.vlan for h in w.hops if h.role == "uplink" and h.dev in good}
    vlan = f" in VLAN {vids.pop()}" if len(vids) == 1 and None not in vids else ""
    return _End(True, f"leaves through {', '.join(good)} unchanged{vlan}: no NAT")


def _host_routes(w: _Walk) -> _End | None:
    """The host's routing step (and MASQUERADE for nat) between the bridge and the uplink."""
    net, snap = w.net, w.snap
    assert net is not None
    route = w.ix.default_route
    evs = [_ip_forward_ev(snap), _route_ev(route)]
    if snap.ip_forward is False:
        w.reasons.append("ip_forward is 0")
    if route is None and net.forward_dev is None:
        w.reasons.append("no default route")
    if w.mode == "nat":
        subnet = _subnet(net)
        if net.nat_rule is None:
            evs.append(Evidence("MASQUERADE", net.nat_rule_evidence or "not checked", None))
        else:
            value = net.nat_rule_evidence or (
                "present" if net.nat_rule else f"missing for {subnet}"
            )
            evs.append(Evidence("MASQUERADE", value, net.nat_rule))
            if not net.nat_rule:
                w.reasons.append(f"no MASQUERADE rule for {subnet or net.name}")
        w.add(None, "nat", evs, ok=not w.reasons)
        v6 = _subnet(net, "ipv6")
        if v6:  # libvirt NATs IPv4 only: <forward mode='nat'> routes a network's IPv6
            w.notes.append(
                f"IPv6 {v6} is routed, not NATed: the VM's IPv6 address is seen unchanged "
                f"outside, and the LAN must route {v6} back to this host"
            )
    else:
        evs.append(Evidence("NAT", "none (routed)", None))
        w.add(None, "route", evs, ok=not w.reasons)
    return None


def _routed_uplink(w: _Walk) -> _End | None:
    net = w.net
    assert net is not None
    route = w.ix.default_route
    out_dev = net.forward_dev or (route.dev if route else None)
    up_lk = w.ix.links.get(out_dev) if out_dev else None
    link_ev = _link_ev(w.ix, out_dev)
    evs = [link_ev, *_stack_evs(w.ix, out_dev)]
    v4 = [a for a in up_lk.addresses if ":" not in a] if up_lk is not None else []
    if v4:
        evs.append(Evidence("address", ", ".join(v4), None))
    vid = _dev_vlan(w.ix, out_dev)
    w.add(out_dev, "uplink", evs, ok=link_ev.ok, vlan=vid, tagged=None if vid is None else True)
    if link_ev.ok is False and out_dev is not None:
        w.reasons.append(f"uplink {out_dev} is {up_lk.state if up_lk else 'missing'}")
    if w.reasons:
        return _End(False, "no way out: " + "; ".join(w.reasons))
    if w.mode == "nat":
        addr = f" {v4[0].split('/')[0]}" if v4 else " its address"
        return _End(True, f"leaves through {out_dev}, source NATed to{addr} (MASQUERADE)")
    extra = " or libvirt firewall rules" if w.mode == "open" else ""
    subnet = _subnet(net) or "the subnet"
    return _End(
        True,
        f"routed out through {out_dev} without NAT{extra}: the LAN must route {subnet} back "
        "to this host",
    )


def _isolated(w: _Walk) -> _End | None:
    w.add(None, "end", [Evidence("<forward>", "none: isolated network", False)], ok=False)
    return _End(False, "no way out: isolated network (no <forward>)")


def _no_network(w: _Walk) -> _End | None:
    w.add(None, "end", [Evidence("libvirt network", "none found", None)], ok=None)
    where = w.bridge_name or "this bridge"
    return _End(
        False, f"way out unknown: no libvirt network uses {where} and it has no uplink port"
    )


def _unknown_mode(w: _Walk) -> _End | None:
    w.add(None, "end", [Evidence("mode", w.mode, None)], ok=None)
    return _End(False, f"unknown network mode ({w.mode})")


def _hostdev(w: _Walk) -> _End | None:
    dev = w.net.forward_dev if w.net else None
    w.add(dev, "uplink", [Evidence("PCI passthrough", f"a function of {dev}", None)], ok=None)
    return _End(True, f"PCI passthrough ({dev}): bypasses the host's network stack")


_MACVTAP_NOTE = {
    "bridge": "(a macvlan of the host's own on {lower}, in bridge mode, can)",
    "vepa": "(only an adjacent switch that reflects frames back, hairpin mode, joins them)",
    "private": "(private mode also keeps it from the other macvtaps on {lower})",
}


def _macvtap(w: _Walk) -> _End | None:
    ix, nic = w.ix, w.nic
    lk = ix.links.get(nic.tap) if nic.tap else None
    lower = w.net.forward_dev if w.net else None
    if lower is None and lk is not None:
        lower = lk.lower or (ix.by_index.get(lk.peer_index) if lk.peer_index is not None else None)
    kmode = (lk.macvlan_mode if lk else None) or _LIBVIRT_MACVLAN.get(w.mode)
    tap_evs = [_link_ev(ix, nic.tap)] if nic.tap else []
    if kmode:
        tap_evs.append(Evidence("macvtap mode", kmode, None))
    w.add(nic.tap, "macvtap", tap_evs)
    vid = _dev_vlan(ix, lower)
    w.add(lower, "uplink", [_link_ev(ix, lower), *_stack_evs(ix, lower)], vlan=vid,
          tagged=None if vid is None else True)  # fmt: skip
    if lower is None:
        return _End(False, "no way out: macvtap without a known host NIC")
    if kmode == "passthru":
        w.notes.append(f"passthru: the VM has {lower} to itself; the host cannot reach it there")
    elif kmode in _MACVTAP_NOTE or kmode is None:
        how = _MACVTAP_NOTE.get(kmode or "", "").format(lower=lower)
        w.notes.append(
            f"the host cannot reach this VM over {lower}: a macvtap's frames never pass to or "
            f"from its lower device's own stack {how}".rstrip()
        )
    return _End(
        True,
        f"leaves through {lower} directly (macvtap {kmode or w.mode}): no bridge, no NAT; "
        "the host itself cannot talk to it",
    )


# --- the tables ------------------------------------------------------------------------------

RULES: dict[str, tuple[Step, ...]] = {
    "bridge": (_tap, _bridge, _bridge_uplinks),
    "chained": (_tap, _bridge, _veth_pair, _bridge, _bridge_uplinks),
    "routed": (_tap, _bridge, _host_routes, _routed_uplink),  # nat, route, open
    "isolated": (_tap, _bridge, _isolated),
    "no-network": (_tap, _bridge, _no_network),
    "unknown": (_tap, _bridge, _unknown_mode),
    "macvtap": (_macvtap,),
    "hostdev": (_hostdev,),
}

_MODE_RULE: dict[str, str] = {
    **{m: "routed" for m in ROUTED_MODES},
    **{m: "macvtap" for m in MACVTAP_MODES},
    "isolated": "isolated",
    "bridge": "bridge",
    "hostdev": "hostdev",
}


def _chained(ix: _Index, nic: VmNic, net: Network | None) -> bool:
    br = ix.bridges.get(nic.bridge or (net.bridge if net else None) or "")
    return br is not None and ix.veth_out(br) is not None


def _is_macvtap(ix: _Index, nic: VmNic) -> bool:
    lk = ix.links.get(nic.tap) if nic.tap else None
    return nic.type == "direct" or (lk is not None and lk.kind == "macvtap")


def _bridged(ix: _Index, nic: VmNic, net: Network | None) -> bool:
    br = ix.bridges.get(nic.bridge) if nic.bridge else None
    return bool(nic.bridge) and (nic.type == "bridge" or (br is not None and bool(br.uplinks)))


# (test, mode, rule), first match wins; ``None`` as mode: the network's own
CLASSIFY: tuple[tuple[Callable[[_Index, VmNic, Network | None], bool], str | None, str], ...] = (
    (lambda ix, nic, net: net is not None and _is_macvtap(ix, nic) and net.mode == "bridge",
     "direct", "macvtap"),
    (lambda ix, nic, net: net is not None and net.mode == "bridge" and _chained(ix, nic, net),
     None, "chained"),
    (lambda ix, nic, net: net is not None, None, ""),
    (lambda ix, nic, net: _is_macvtap(ix, nic), "direct", "macvtap"),
    (lambda ix, nic, net: bool(nic.bridge) and _chained(ix, nic, net), "bridge", "chained"),
    (lambda ix, nic, net: _bridged(ix, nic, net), "bridge", "bridge"),
    (lambda ix, nic, net: True, "unknown", "no-network"),
)  # fmt: skip


def classify(ix: _Index, nic: VmNic, net: Network | None) -> tuple[str, str]:
    """``(mode, rule)`` of a NIC: the mode the path reports and the row of :data:`RULES`."""
    for test, mode, rule in CLASSIFY:
        if test(ix, nic, net):
            m = mode or (net.mode if net else "unknown")
            return m, rule or _MODE_RULE.get(m, "unknown")
    return "unknown", "no-network"  # pragma: no cover - the last row always matches


def nic_path(snap: HostSnapshot, vm: Vm, nic: VmNic, ix: _Index | None = None) -> NicPath:
    ix = ix or _Index(snap)
    net = _network_of(ix, nic)
    mode, rule = classify(ix, nic, net)
    w = _Walk(snap, ix, vm, nic, net, mode)
    end = _End(False, f"VM is {vm.state}: no tap, no path")
    if vm.state in RUNNING_STATES:
        for step in RULES[rule]:
            got = step(w)
            if got is not None:
                end = got
                break
    return NicPath(
        vm.name,
        nic.mac,
        mode,  # type: ignore[arg-type]
        tuple(w.hops),
        end.way_out,
        end.verdict,
        tuple(w.notes),
    )


def compute_paths(snap: HostSnapshot) -> tuple[NicPath, ...]:
    ix = _Index(snap)
    return tuple(nic_path(snap, vm, nic, ix) for vm in snap.vms for nic in vm.nics)
