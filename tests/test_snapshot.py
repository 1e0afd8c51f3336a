"""The join (build_snapshot) on hand-built reader states: owners, IPs and their sources, light
VMs, uplinks, NAT rules. Pure: no host is read. The states mirror the lab's wiring."""

from __future__ import annotations

from dataclasses import replace

from kvmtui.core.firewall import FirewallState, NatRule
from kvmtui.core.model import (
    BridgePortInfo,
    DhcpHost,
    DhcpRange,
    FdbRecord,
    Lease,
    Link,
    Neighbour,
    NetAddress,
    NetlinkState,
    Network,
    Route,
    Vm,
    VmNic,
)
from kvmtui.core.procs import ProcState
from kvmtui.core.snapshot import build_snapshot, looks_physical
from kvmtui.core.virt import VirtState
from kvmtui.lab import spec

NS = "t-"
LIGHT_NAT = NS + "nat-light"
LIGHT_ISO = NS + "iso-a"
LIGHT_BR = NS + "br-light"
ROUTER_MAC = spec.LAN_ROUTER_MAC
STRAY_MAC = "52:54:00:bb:bb:bb"  # has a lease, is no VM we know
UNKNOWN_MAC = "02:99:00:00:00:01"
VIRBR0_MAC = "52:54:00:80:05:05"
BR0_MAC = "02:00:00:00:00:b0"


def L(idx: int, name: str, kind: str, mac: str, **kw: object) -> Link:
    return Link(
        index=idx, name=name, kind=kind, state=kw.pop("state", "up"), mac=mac, mtu=1500, **kw
    )  # type: ignore[arg-type]


def netlink_state(ip_forward: bool = True) -> NetlinkState:
    links = (
        L(1, "lo", "loopback", "00:00:00:00:00:00", state="unknown"),
        L(2, "wan0", "veth", "02:00:00:00:00:02", addresses=(spec.UPLINK_CIDR,), peer_netns="x"),
        L(3, "virbr0", "bridge", VIRBR0_MAC, addresses=(f"{spec.NAT_GATEWAY}/24",)),
        L(4, "vnet0", "veth", "fe:54:00:aa:01:01", master="virbr0", peer_index=2,
          peer_netns_id=3, peer_netns=LIGHT_NAT),
        L(5, "vnet5", "tap", "fe:54:00:aa:00:01", master="virbr0", state="unknown"),
        L(6, "br0", "bridge", BR0_MAC, addresses=(spec.BR_HOST_CIDR,)),
        L(7, "ens9", "veth", BR0_MAC, master="br0", peer_index=2, peer_netns="t-lan"),
        L(8, "vnet6", "tap", "fe:54:00:aa:00:02", master="br0", state="unknown"),
        L(9, "vnet1", "veth", "fe:54:00:aa:01:02", master="br0", peer_index=2, peer_netns=LIGHT_BR),
        L(10, "virbr1", "bridge", "52:54:00:8a:9f:3c", addresses=(f"{spec.ISO_GATEWAY}/24",)),
        L(11, "vnet2", "veth", "fe:54:00:aa:01:03", master="virbr1", peer_index=2,
          peer_netns=LIGHT_ISO),
        L(12, "virbr2", "bridge", "52:54:00:00:00:22", addresses=("192.168.150.1/24",)),
        L(13, "vnet7", "tap", "fe:54:00:aa:00:07", master="virbr2", state="unknown"),
        L(14, "eth3", "physical", "02:00:00:00:00:e3"),
        L(15, "macvtap0", "macvtap", "52:54:00:aa:00:08", peer_index=14),
    )  # fmt: skip
    fwd = BridgePortInfo(stp_state="forwarding", learning=True, flooding=True)
    ports = tuple((lk.name, fwd) for lk in links if lk.master)
    fdb = (
        FdbRecord("52:54:00:aa:01:01", 4, "vnet0", "virbr0", None, "learned", 3.0),
        FdbRecord("fe:54:00:aa:01:01", 4, "vnet0", "virbr0", 1, "permanent", None),
        FdbRecord("52:54:00:aa:00:01", 5, "vnet5", "virbr0", None, "learned", 1.5),
        FdbRecord(VIRBR0_MAC, 3, "virbr0", "virbr0", None, "permanent", None),
        FdbRecord(STRAY_MAC, 4, "vnet0", "virbr0", None, "learned", 9.0),
        FdbRecord(ROUTER_MAC, 7, "ens9", "br0", None, "learned", 0.5),
        FdbRecord(BR0_MAC, 7, "ens9", "br0", None, "permanent", None),
        FdbRecord("52:54:00:aa:00:02", 8, "vnet6", "br0", None, "learned", 2.0),
        FdbRecord("52:54:00:aa:01:02", 9, "vnet1", "br0", None, "learned", 2.0),
        FdbRecord(UNKNOWN_MAC, 7, "ens9", "br0", None, "learned", 30.0),
        FdbRecord("52:54:00:aa:01:03", 11, "vnet2", "virbr1", None, "learned", 1.0),
        FdbRecord("52:54:00:aa:00:07", 13, "vnet7", "virbr2", None, "static", None),
    )
    neigh = (
        Neighbour(spec.LAN_ROUTER_IP, ROUTER_MAC, "br0", "reachable"),
        Neighbour("10.0.0.137", "52:54:00:aa:00:02", "br0", "stale"),
        Neighbour("10.0.0.150", "52:54:00:aa:01:02", "br0", "reachable"),
        Neighbour("10.0.0.99", UNKNOWN_MAC, "br0", "failed"),  # failed: not an answer
    )
    routes = (
        Route("default", "wan0", gateway=spec.INTERNET_IP),
        Route(spec.NAT_SUBNET, "virbr0"),
    )
    return NetlinkState(
        links=links,
        bridge_ports=ports,
        bridge_stp=(("virbr0", True, 2.0), ("br0", False, 15.0)),
        fdb=fdb,
        neighbours=neigh,
        routes=routes,
        ip_forward=ip_forward,
    )


def net(name: str, mode: str, bridge: str | None, addr: str | None = None, **kw: object) -> Network:
    addrs = ()
    if addr:
        addrs = (
            NetAddress(
                addr,
                24,
                ranges=kw.pop("ranges", ()),  # type: ignore[arg-type]
                hosts=kw.pop("hosts", ()),  # type: ignore[arg-type]
            ),
        )
    return Network(name, "uuid-" + name, mode, bridge, True, True, addrs, **kw)  # type: ignore[arg-type]


def virt_state() -> VirtState:
    nets = (
        net(
            spec.NAT_NET, "nat", "virbr0", spec.NAT_GATEWAY,
            ranges=(DhcpRange(*spec.NAT_RANGE),),
            leases=(
                Lease("52:54:00:aa:01:01", "192.168.122.10", 24, "nat-light", 2_000_000_000),
                Lease("52:54:00:aa:00:01", "192.168.122.20", 24, "nat-qemu", 2_000_000_000),
                Lease(STRAY_MAC, "192.168.122.30", 24, "stray", 2_000_000_000),
            ),
        ),
        net(
            spec.ISO_NET, "isolated", "virbr1", spec.ISO_GATEWAY,
            hosts=(DhcpHost("52:54:00:aa:01:03", "192.168.100.50", "iso-a"),),
        ),
        net(spec.BR_NET, "bridge", "br0"),
        net("routed", "route", "virbr2", "192.168.150.1"),
        net("mv", "private", None, forward_dev="eth3"),
    )  # fmt: skip
    doms = (
        Vm("nat-qemu", "u1", "running", (VmNic("52:54:00:aa:00:01", "network", "virtio",
           network=spec.NAT_NET, tap="vnet5"),), domain_id=1),
        Vm("br-qemu", "u2", "running", (VmNic("52:54:00:aa:00:02", "bridge", "virtio",
           bridge="br0", tap="vnet6"),), domain_id=2),
        Vm("r1", "u3", "running", (VmNic("52:54:00:aa:00:07", "network", "virtio",
           network="routed", tap="vnet7"),), domain_id=3),
        Vm("mv1", "u4", "running", (VmNic("52:54:00:aa:00:08", "network", None,
           network="mv", tap="macvtap0"),), domain_id=4),
        Vm("off1", "u5", "shut off", (VmNic("52:54:00:aa:00:09", "network", None,
           network=spec.NAT_NET),)),
    )  # fmt: skip
    return VirtState(
        uri="test:///fake",
        networks=nets,
        domains=doms,
        agent_ips=(("52:54:00:aa:00:07", "192.168.150.5"),),
        connected=True,
    )


def firewall(covered: bool = True) -> FirewallState:
    rules = ()
    if covered:
        rules = (
            NatRule("nat", "LIBVIRT_PRT", "MASQUERADE", spec.NAT_SUBNET, False, spec.NAT_SUBNET,
                    True, None, 42),
        )  # fmt: skip
    return FirewallState(nat_rules=rules, read_ok=True)


GUEST_MACS = {
    "vnet0": "52:54:00:aa:01:01",
    "vnet1": "52:54:00:aa:01:02",
    "vnet2": "52:54:00:aa:01:03",
}


def snap(ip_forward: bool = True, covered: bool = True):  # type: ignore[no-untyped-def]
    return build_snapshot(
        netlink_state(ip_forward),
        virt_state(),
        firewall=firewall(covered),
        procs=ProcState(vm_pids=(("nat-qemu", 1234),), tap_pids=(("vnet6", 5678),)),
        guest_macs=GUEST_MACS,
        hostname="h",
        taken_at=1.0,
    )


def fdb_owner(s, bridge: str, mac: str, port: str | None = None):  # type: ignore[no-untyped-def]
    br = s.bridge(bridge)
    return next(f.owner for f in br.fdb if f.mac == mac and (port is None or f.port == port))


# --- tests -----------------------------------------------------------------------------------


def test_light_vms_are_namespace_guests_and_ens9_is_an_uplink() -> None:
    s = snap()
    light = {v.name: v for v in s.vms if v.kind == "light"}
    assert set(light) == {LIGHT_NAT, LIGHT_BR, LIGHT_ISO}
    assert "t-lan" not in light  # ens9 looks physical: the bridge's uplink, not a guest
    nic = light[LIGHT_NAT].nics[0]
    assert (nic.mac, nic.type, nic.tap, nic.bridge, nic.network) == (
        "52:54:00:aa:01:01", "veth", "vnet0", "virbr0", spec.NAT_NET,
    )  # fmt: skip
    assert light[LIGHT_NAT].state == "running"
    br0 = s.bridge("br0")
    assert br0 is not None and br0.uplinks == ("ens9",)
    ports = {p.name: p for p in br0.ports}
    assert ports["ens9"].owner == "uplink"
    assert ports["vnet6"].vm == "br-qemu" and ports["vnet6"].owner == "VM br-qemu"
    assert ports["vnet1"].vm == LIGHT_BR
    assert ports["vnet6"].stp_state == "forwarding"
    assert br0.networks == (spec.BR_NET,)
    assert s.bridge("virbr0").stp is True and s.bridge("virbr0").forward_delay_s == 2.0  # type: ignore[union-attr]
    assert s.bridge("virbr0").uplinks == ()  # type: ignore[union-attr]


def test_physical_name_rule() -> None:
    for name in ("ens9", "eth0", "em1", "wlp2s0", "p1p2", "bond0", "enp3s0f1"):
        assert looks_physical(name), name
    for name in ("vnet0", "veth12", "tap3", "wan0", "virbr0"):
        assert not looks_physical(name), name


def test_vm_ips_with_their_sources() -> None:
    s = snap()
    ip = {(v.name, n.mac): (n.ip, n.ip_source) for v in s.vms for n in v.nics}
    assert ip[("nat-qemu", "52:54:00:aa:00:01")] == ("192.168.122.20", "lease")
    assert ip[(LIGHT_NAT, "52:54:00:aa:01:01")] == ("192.168.122.10", "lease")
    assert ip[(LIGHT_ISO, "52:54:00:aa:01:03")] == ("192.168.100.50", "static-dhcp")
    # bridged VMs: the LAN gave the address; the host saw it in its neighbour table
    assert ip[("br-qemu", "52:54:00:aa:00:02")] == ("10.0.0.137", "neighbour")
    assert ip[(LIGHT_BR, "52:54:00:aa:01:02")] == ("10.0.0.150", "neighbour")
    assert ip[("r1", "52:54:00:aa:00:07")] == ("192.168.150.5", "agent")
    assert ip[("off1", "52:54:00:aa:00:09")] == (None, "none")


def test_vm_details_from_libvirt_and_processes() -> None:
    s = snap()
    nq, bq, off = s.vm("nat-qemu"), s.vm("br-qemu"), s.vm("off1")
    assert nq is not None and bq is not None and off is not None
    assert nq.pid == 1234  # from -name guest=
    assert bq.pid == 5678  # from the tap's fdinfo owner
    assert off.pid is None and off.nics[0].tap is None
    assert nq.nics[0].bridge == "virbr0"  # from the tap's master
    assert bq.nics[0].network == spec.BR_NET  # the libvirt network that uses br0
    default = s.network(spec.NAT_NET)
    assert default is not None
    assert set(default.vms) >= {"nat-qemu", LIGHT_NAT, "off1"}
    assert s.network(spec.ISO_NET).vms == (LIGHT_ISO,)  # type: ignore[union-attr]


def test_fdb_owners_every_kind() -> None:
    s = snap()
    o = fdb_owner(s, "virbr0", "52:54:00:aa:01:01")
    assert (o.kind, o.name, o.nic, o.ip, o.ip_source) == (
        "vm", LIGHT_NAT, "vnet0", "192.168.122.10", "lease",
    )  # fmt: skip
    o = fdb_owner(s, "virbr0", "52:54:00:aa:00:01")
    assert (o.kind, o.name, o.nic) == ("vm", "nat-qemu", "vnet5")
    o = fdb_owner(s, "virbr0", "fe:54:00:aa:01:01")
    assert (o.kind, o.name) == ("host", "vnet0")  # the tap's own MAC
    o = fdb_owner(s, "virbr0", VIRBR0_MAC)
    assert (o.kind, o.name, o.ip, o.ip_source) == (
        "host",
        "virbr0",
        spec.NAT_GATEWAY,
        "host-address",
    )
    o = fdb_owner(s, "br0", BR0_MAC, "ens9")
    assert (o.kind, o.name) == ("host", "ens9")  # ens9's own MAC, which br0 shares
    o = fdb_owner(s, "virbr0", STRAY_MAC)
    assert (o.kind, o.name, o.ip, o.ip_source) == ("lease", "stray", "192.168.122.30", "lease")
    o = fdb_owner(s, "br0", ROUTER_MAC)
    assert (o.kind, o.ip, o.ip_source) == ("neighbour", spec.LAN_ROUTER_IP, "neighbour")
    assert o.label().startswith("LAN neighbour")
    o = fdb_owner(s, "br0", UNKNOWN_MAC)  # only a failed neighbour entry: unknown
    assert o.kind == "unknown" and o.label() == "unknown"
    e = next(f for f in s.bridge("br0").fdb if f.mac == ROUTER_MAC)  # type: ignore[union-attr]
    assert (e.port, e.kind, e.age_s) == ("ens9", "learned", 0.5)


def test_nat_rule_joined_per_network() -> None:
    s = snap()
    d = s.network(spec.NAT_NET)
    assert d is not None and d.nat_rule is True and "MASQUERADE" in (d.nat_rule_evidence or "")
    assert s.network(spec.ISO_NET).nat_rule is None  # type: ignore[union-attr]  # not NAT
    s2 = snap(covered=False)
    d2 = s2.network(spec.NAT_NET)
    assert d2 is not None and d2.nat_rule is False
    assert spec.NAT_SUBNET in (d2.nat_rule_evidence or "")


def test_host_level_fields_and_problems() -> None:
    s = snap()
    assert s.uplink == "wan0" and s.ip_forward is True and s.libvirt_uri == "test:///fake"
    assert s.problems == ()
    v = replace(virt_state(), networks=(), domains=(), connected=False)
    from kvmtui.core.model import Problem

    v = replace(v, problems=(Problem("libvirt", "libvirt: cannot connect"),))
    s2 = build_snapshot(netlink_state(), v, guest_macs=GUEST_MACS)
    # without libvirt the bridges, FDB and namespace guests are still there
    assert [p.source for p in s2.problems] == ["libvirt"]
    assert {b.name for b in s2.bridges} == {"virbr0", "br0", "virbr1", "virbr2"}
    assert {v.name for v in s2.vms} == {LIGHT_NAT, LIGHT_BR, LIGHT_ISO}
    # a tap port is unknown without libvirt: no VM, its MAC resolves to the host device
    assert fdb_owner(s2, "virbr0", "52:54:00:aa:00:01").kind == "unknown"


def test_json_interface_keys() -> None:
    """The documented JSON interface (schema 1): these keys must stay."""
    import json

    from kvmtui.core.jsonout import SCHEMA, snapshot_json

    doc = json.loads(json.dumps(snapshot_json(snap())))
    assert doc["schema"] == SCHEMA == 1
    assert set(doc) >= {
        "schema", "taken_at", "host", "libvirt_uri", "uplink", "ip_forward", "bridges",
        "networks", "vms", "links", "routes", "neighbours", "paths", "problems",
    }  # fmt: skip
    br = next(b for b in doc["bridges"] if b["name"] == "br0")
    assert set(br) >= {"name", "ports", "fdb", "stp", "uplinks", "networks", "addresses"}
    assert set(br["ports"][0]) >= {"name", "kind", "state", "stp_state", "vm", "owner"}
    f = next(f for f in br["fdb"] if f["mac"] == ROUTER_MAC)
    assert f == {
        "mac": ROUTER_MAC, "port": "ens9", "vlan": None, "kind": "learned", "age_s": 0.5,
        "owner": {"kind": "neighbour", "name": spec.LAN_ROUTER_IP, "nic": "br0",
                  "ip": spec.LAN_ROUTER_IP, "ip_source": "neighbour",
                  "label": f"LAN neighbour {spec.LAN_ROUTER_IP}"},
    }  # fmt: skip
    net = next(n for n in doc["networks"] if n["name"] == spec.NAT_NET)
    assert set(net) >= {"name", "mode", "bridge", "active", "autostart", "addresses", "leases"}
    assert set(net["leases"][0]) >= {"mac", "ip", "hostname", "expiry"}
    assert net["addresses"][0]["ranges"] == [{"start": spec.NAT_RANGE[0], "end": spec.NAT_RANGE[1]}]
    vm = next(v for v in doc["vms"] if v["name"] == "br-qemu")
    assert vm["nics"] == [
        {"mac": "52:54:00:aa:00:02", "type": "bridge", "model": "virtio", "network": spec.BR_NET,
         "bridge": "br0", "tap": "vnet6", "ip": "10.0.0.137", "ip_source": "neighbour",
         "ip_seen_at": None}
    ]  # fmt: skip
    p = next(p for p in doc["paths"] if p["vm"] == "br-qemu")
    assert set(p) == {"vm", "mac", "mode", "way_out", "verdict", "notes", "hops"}
    hop_keys = {"dev", "role", "ok", "vlan", "tagged", "evidence"}
    assert [set(h) for h in p["hops"]] == [hop_keys] * 4
    assert set(p["hops"][0]["evidence"][0]) == {"what", "value", "ok"}


def test_fdb_cache_reuses_entries_until_owners_change() -> None:
    from kvmtui.core.snapshot import FdbCache

    cache = FdbCache()
    nl, v = netlink_state(), virt_state()
    a = build_snapshot(nl, v, guest_macs=GUEST_MACS, fdb_cache=cache)
    b = build_snapshot(nl, v, guest_macs=GUEST_MACS, fdb_cache=cache)
    fa = {(f.mac, f.port): f for br in a.bridges for f in br.fdb}
    fb = {(f.mac, f.port): f for br in b.bridges for f in br.fdb}
    assert fa.keys() == fb.keys() and all(fa[k] is fb[k] for k in fa)
    # a new lease changes who STRAY_MAC is: the cached entries must not be reused
    nets = tuple(
        replace(n, leases=(*n.leases, Lease(UNKNOWN_MAC, "192.168.122.99", 24, "late")))
        if n.name == spec.NAT_NET
        else n
        for n in v.networks
    )
    c = build_snapshot(nl, replace(v, networks=nets), guest_macs=GUEST_MACS, fdb_cache=cache)
    assert fdb_owner(c, "br0", UNKNOWN_MAC).kind == "lease"
    assert fdb_owner(b, "br0", UNKNOWN_MAC).kind == "unknown"
    # a replaced record (same MAC, new port) gets a new entry
    fdb = tuple(
        replace(f, port="vnet1", port_index=9) if f.mac == UNKNOWN_MAC else f for f in nl.fdb
    )
    d = build_snapshot(replace(nl, fdb=fdb), v, guest_macs=GUEST_MACS, fdb_cache=cache)
    e = next(f for f in d.bridge("br0").fdb if f.mac == UNKNOWN_MAC)  # type: ignore[union-attr]
    assert e.port == "vnet1"
    # an FDB of one bridge (grouped without a pass per entry) joins to the same entries
    only = tuple(f for f in nl.fdb if f.bridge == "br0")
    g = build_snapshot(replace(nl, fdb=only), v, guest_macs=GUEST_MACS, fdb_cache=FdbCache())
    assert g.bridge("br0").fdb == a.bridge("br0").fdb  # type: ignore[union-attr]
    assert all(not br.fdb for br in g.bridges if br.name != "br0")
