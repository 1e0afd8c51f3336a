"""The path each VM NIC's packets take out of the host, hop by hop, with evidence.

Pure: computed from a ``HostSnapshot`` (built without paths). By the network's mode:

- bridge:   tap -> bridge -> the bridge's uplink port(s) -> LAN ("leaves through ens9 unchanged:
            no NAT")
- nat:      tap -> bridge (the VMs' gateway) -> routing + MASQUERADE -> uplink (the default
            route's device); ip_forward 0 or a missing NAT rule close the way out
- route:    tap -> bridge -> routing (no NAT) -> uplink
- open:     likewise, and libvirt adds no firewall rules
- isolated: tap -> bridge -> end ("no way out: isolated network (no <forward>)")
- macvtap (private, vepa, passthrough, or a ``direct`` NIC): macvtap -> the host NIC
- hostdev:  a PCI function handed to the guest: the host's stack is not on the path
"""

from __future__ import annotations

from kvmtui.core.model import (
    Bridge,
    Evidence,
    FdbEntry,
    Hop,
    HostSnapshot,
    NetMode,
    Network,
    NicPath,
    Port,
    Route,
    Vm,
    VmNic,
)

RUNNING = ("running", "paused", "blocked", "pmsuspended")


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


def _default_route(snap: HostSnapshot) -> Route | None:
    for r in snap.routes:
        if r.dst in ("default", "0.0.0.0/0") and r.table in (254, 0):
            return r
    return None


def _port(ix: _Index, br: Bridge | None, name: str | None) -> Port | None:
    if br is None or name is None:
        return None
    return ix.ports.get((br.name, name))


def _fdb_of(ix: _Index, br: Bridge | None, mac: str) -> FdbEntry | None:
    if br is None:
        return None
    hits = ix.fdb.get((br.name, mac), [])
    learned = [f for f in hits if f.kind == "learned"]
    best = learned or hits
    return best[0] if best else None


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


def _network_of(ix: _Index, nic: VmNic) -> Network | None:
    if nic.network:
        return ix.networks.get(nic.network)
    if nic.bridge:
        return ix.net_by_bridge.get(nic.bridge)
    return None


def _subnet(net: Network) -> str | None:
    for a in net.addresses:
        if a.family == "ipv4" and a.address:
            import ipaddress

            return str(ipaddress.ip_network(f"{a.address}/{a.prefix}", strict=False))
    return None


def _has_uplink(ix: _Index, bridge: str) -> bool:
    br = ix.bridges.get(bridge)
    return br is not None and bool(br.uplinks)


def nic_path(snap: HostSnapshot, vm: Vm, nic: VmNic, ix: _Index | None = None) -> NicPath:
    ix = ix or _Index(snap)
    net = _network_of(ix, nic)
    mode: NetMode | str
    if net is not None and (nic.type != "direct" or net.mode != "bridge"):
        mode = net.mode
    elif nic.type == "direct":
        mode = "direct"
    elif nic.bridge and (nic.type == "bridge" or _has_uplink(ix, nic.bridge)):
        mode = "bridge"
    else:
        mode = "unknown"

    def done(hops: list[Hop], way_out: bool, verdict: str) -> NicPath:
        return NicPath(vm.name, nic.mac, mode, tuple(hops), way_out, verdict)  # type: ignore[arg-type]

    if vm.state not in RUNNING:
        return done([], False, f"VM is {vm.state}: no tap, no path")

    hops: list[Hop] = []
    if mode == "hostdev":
        dev = net.forward_dev if net else None
        hops.append(
            Hop(dev, "uplink", (Evidence("PCI passthrough", f"a function of {dev}", None),))
        )
        return done(hops, True, f"PCI passthrough ({dev}): bypasses the host's network stack")

    if mode in ("private", "vepa", "passthrough", "direct", "macvtap"):
        lower = net.forward_dev if net else None
        tap_ev = [_link_ev(ix, nic.tap)] if nic.tap else []
        hops.append(Hop(nic.tap, "macvtap", tuple(tap_ev), ok=all(e.ok for e in tap_ev)))
        if lower is None and nic.tap:
            lk = ix.links.get(nic.tap)
            if lk is not None and lk.peer_index is not None:
                lower = ix.by_index.get(lk.peer_index)
        hops.append(Hop(lower, "uplink", (_link_ev(ix, lower),)))
        if lower is None:
            return done(hops, False, "no way out: macvtap without a known host NIC")
        return done(
            hops,
            True,
            f"leaves through {lower} directly (macvtap {mode}): no bridge, no NAT; "
            "the host itself cannot talk to it",
        )

    # tap -> bridge
    br_name = nic.bridge or (net.bridge if net else None)
    br = ix.bridges.get(br_name) if br_name else None
    tap_evs = [_link_ev(ix, nic.tap)] if nic.tap else [Evidence("tap", "none", False)]
    hops.append(Hop(nic.tap, "tap", tuple(tap_evs), ok=all(e.ok is not False for e in tap_evs)))
    port = _port(ix, br, nic.tap)
    br_evs: list[Evidence] = []
    if br is None:
        br_evs.append(Evidence("bridge", f"{br_name or 'no bridge'} not found", False))
    else:
        br_evs.append(Evidence("bridge state", br.state, br.state in ("up", "unknown")))
        if nic.tap:
            br_evs.extend(_port_evs(port, nic.tap))
        f = _fdb_of(ix, br, nic.mac) if nic.mac else None
        if not nic.mac:
            br_evs.append(Evidence("FDB", "guest MAC unknown", None))
        elif f is None:
            br_evs.append(Evidence("FDB", f"{nic.mac} not learned (no frame from it yet)", None))
        elif nic.tap and f.port != nic.tap:
            br_evs.append(Evidence("FDB", f"{nic.mac} learned on {f.port}, not {nic.tap}", False))
        else:
            br_evs.append(
                Evidence("FDB", f"{nic.mac} on {f.port}, {f.kind}, {_fmt_age(f.age_s)}", True)
            )
        if br.addresses:
            br_evs.append(Evidence("bridge address", ", ".join(br.addresses), None))
    hops.append(Hop(br_name, "bridge", tuple(br_evs), ok=all(e.ok is not False for e in br_evs)))

    if mode == "bridge":
        ups = br.uplinks if br else ()
        if not ups:
            hops.append(Hop(None, "end", (Evidence("uplink", "none", False),), ok=False))
            return done(hops, False, f"no way out: bridge {br_name} has no uplink port")
        good = []
        for u in ups:
            evs = _port_evs(_port(ix, br, u), u)
            ok = all(e.ok is not False for e in evs)
            if ok:
                good.append(u)
            hops.append(Hop(u, "uplink", tuple(evs), ok=ok))
        src = nic.ip or "the VM's address"
        hops.append(
            Hop(None, "lan", (Evidence("NAT", f"none: source IP stays {src}", None),), ok=True)
        )
        names = ", ".join(ups)
        if not good:
            return done(hops, False, f"no way out: uplink port {names} is down or blocked")
        return done(hops, True, f"leaves through {names} unchanged: no NAT")

    if mode == "isolated":
        hops.append(
            Hop(None, "end", (Evidence("<forward>", "none: isolated network", False),), ok=False)
        )
        return done(hops, False, "no way out: isolated network (no <forward>)")

    if mode in ("nat", "route", "open"):
        assert net is not None
        route = _default_route(snap)
        out_dev = net.forward_dev or (route.dev if route else None)
        fwd = _ip_forward_ev(snap)
        evs = [fwd, _route_ev(route)]
        reasons: list[str] = []
        if snap.ip_forward is False:
            reasons.append("ip_forward is 0")
        if route is None and net.forward_dev is None:
            reasons.append("no default route")
        subnet = _subnet(net)
        if mode == "nat":
            if net.nat_rule is None:
                evs.append(Evidence("MASQUERADE", net.nat_rule_evidence or "not checked", None))
            else:
                evs.append(
                    Evidence(
                        "MASQUERADE",
                        net.nat_rule_evidence
                        or ("present" if net.nat_rule else f"missing for {subnet}"),
                        net.nat_rule,
                    )
                )
                if not net.nat_rule:
                    reasons.append(f"no MASQUERADE rule for {subnet or net.name}")
            role = "nat"
        else:
            evs.append(Evidence("NAT", "none (routed)", None))
            role = "route"
        hops.append(Hop(None, role, tuple(evs), ok=not reasons))  # type: ignore[arg-type]
        up_lk = ix.links.get(out_dev) if out_dev else None
        up_evs = [_link_ev(ix, out_dev)]
        if up_lk is not None:
            v4 = [a for a in up_lk.addresses if ":" not in a]
            if v4:
                up_evs.append(Evidence("address", ", ".join(v4), None))
        hops.append(Hop(out_dev, "uplink", tuple(up_evs), ok=up_evs[0].ok))
        if up_evs[0].ok is False and out_dev is not None:
            reasons.append(f"uplink {out_dev} is {up_lk.state if up_lk else 'missing'}")
        if reasons:
            return done(hops, False, "no way out: " + "; ".join(reasons))
        if mode == "nat":
            addr = ""
            if up_lk is not None:
                v4 = [a.split("/")[0] for a in up_lk.addresses if ":" not in a]
                addr = f" {v4[0]}" if v4 else ""
            return done(
                hops,
                True,
                f"leaves through {out_dev}, source NATed to{addr or ' its address'} (MASQUERADE)",
            )
        extra = " or libvirt firewall rules" if mode == "open" else ""
        return done(
            hops,
            True,
            f"routed out through {out_dev} without NAT{extra}: the LAN must route "
            f"{subnet or 'the subnet'} back to this host",
        )

    if net is None:
        hops.append(Hop(None, "end", (Evidence("libvirt network", "none found", None),)))
        return done(
            hops,
            False,
            f"way out unknown: no libvirt network uses {br_name or 'this bridge'} "
            "and it has no uplink port",
        )
    hops.append(Hop(None, "end", (Evidence("mode", str(mode), None),)))
    return done(hops, False, f"unknown network mode ({mode})")


def compute_paths(snap: HostSnapshot) -> tuple[NicPath, ...]:
    ix = _Index(snap)
    return tuple(nic_path(snap, vm, nic, ix) for vm in snap.vms for nic in vm.nics)
