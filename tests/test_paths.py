"""NIC paths by mode, on hand-built states (see test_snapshot): hops, evidence, verdicts, and
what closes the way out (ip_forward 0, a missing NAT rule, no uplink, a down port)."""

from __future__ import annotations

from dataclasses import replace

from test_snapshot import (
    GUEST_MACS,
    LIGHT_BR,
    LIGHT_ISO,
    LIGHT_NAT,
    firewall,
    netlink_state,
    snap,
    virt_state,
)

from kvmtui.core.model import HostSnapshot, NicPath
from kvmtui.core.paths import compute_paths
from kvmtui.core.snapshot import build_snapshot
from kvmtui.lab import spec


def path(s: HostSnapshot, vm: str, i: int = 0) -> NicPath:
    return s.paths_of(vm)[i]


def ev(p: NicPath, role: str, what: str) -> tuple[str, bool | None]:
    hop = next(h for h in p.hops if h.role == role)
    e = next(e for e in hop.evidence if e.what == what)
    return e.value, e.ok


def test_nat_path() -> None:
    p = path(snap(), "nat-qemu")
    assert p.mode == "nat" and p.mac == "52:54:00:aa:00:01"
    assert [(h.dev, h.role) for h in p.hops] == [
        ("vnet5", "tap"), ("virbr0", "bridge"), (None, "nat"), (spec.UPLINK, "uplink"),
    ]  # fmt: skip
    assert p.way_out is True
    assert (
        p.verdict == f"leaves through {spec.UPLINK}, source NATed to {spec.UPLINK_IP} (MASQUERADE)"
    )
    assert ev(p, "nat", "ip_forward") == ("1", True)
    value, ok = ev(p, "nat", "MASQUERADE")
    assert ok is True and spec.NAT_SUBNET in value and "42 packets" in value
    value, ok = ev(p, "bridge", "FDB")
    assert ok is True and "vnet5" in value and "age 2 s" in value  # 1.5 s rounds to 2
    assert ev(p, "bridge", "STP state") == ("forwarding", True)
    # the light VM on the same network takes the same way
    pl = path(snap(), LIGHT_NAT)
    assert [h.dev for h in pl.hops] == ["vnet0", "virbr0", None, spec.UPLINK] and pl.way_out


def test_nat_path_closed_by_ip_forward_0() -> None:
    p = path(snap(ip_forward=False), "nat-qemu")
    assert p.way_out is False
    assert p.verdict == "no way out: ip_forward is 0"
    assert ev(p, "nat", "ip_forward") == ("0", False)
    assert next(h for h in p.hops if h.role == "nat").ok is False


def test_nat_path_closed_by_missing_nat_rule() -> None:
    p = path(snap(covered=False), LIGHT_NAT)
    assert p.way_out is False
    assert p.verdict == f"no way out: no MASQUERADE rule for {spec.NAT_SUBNET}"
    assert ev(p, "nat", "MASQUERADE")[1] is False
    both = path(snap(ip_forward=False, covered=False), LIGHT_NAT)
    assert "ip_forward is 0" in both.verdict and "MASQUERADE" in both.verdict


def test_bridged_path() -> None:
    for vm, tap in (("br-qemu", "vnet6"), (LIGHT_BR, "vnet1")):
        p = path(snap(), vm)
        assert p.mode == "bridge"
        assert [(h.dev, h.role) for h in p.hops] == [
            (tap, "tap"), ("br0", "bridge"), ("ens9", "uplink"), (None, "lan"),
        ]  # fmt: skip
        assert p.way_out is True
        assert p.verdict == "leaves through ens9 unchanged: no NAT"
        assert "source IP stays 10.0.0." in ev(p, "lan", "NAT")[0]


def test_bridged_path_without_or_with_down_uplink() -> None:
    nl = netlink_state()
    down = tuple(replace(lk, state="down") if lk.name == "ens9" else lk for lk in nl.links)
    s = build_snapshot(replace(nl, links=down), virt_state(), firewall=firewall(),
                       guest_macs=GUEST_MACS)  # fmt: skip
    p = path(s, "br-qemu")
    assert p.way_out is False and p.verdict == "no way out: uplink port ens9 is down or blocked"
    gone = tuple(lk for lk in nl.links if lk.name != "ens9")
    s = build_snapshot(replace(nl, links=gone), virt_state(), guest_macs=GUEST_MACS)
    p = path(s, "br-qemu")
    assert p.way_out is False and p.verdict == "no way out: bridge br0 has no uplink port"


def test_isolated_path() -> None:
    p = path(snap(), LIGHT_ISO)
    assert p.mode == "isolated"
    assert [(h.dev, h.role) for h in p.hops] == [
        ("vnet2", "tap"), ("virbr1", "bridge"), (None, "end"),
    ]  # fmt: skip
    assert p.way_out is False
    assert p.verdict == "no way out: isolated network (no <forward>)"


def test_routed_and_open_paths() -> None:
    p = path(snap(), "r1")
    assert p.mode == "route"
    assert [h.role for h in p.hops] == ["tap", "bridge", "route", "uplink"]
    assert p.way_out is True and "without NAT" in p.verdict and "192.168.150.0/24" in p.verdict
    assert ev(p, "bridge", "FDB")[1] is True  # a static entry counts
    s = snap()
    nets = tuple(replace(n, mode="open") if n.name == "routed" else n for n in s.networks)
    po = next(p for p in compute_paths(replace(s, networks=nets)) if p.vm == "r1")
    assert po.mode == "open" and "or libvirt firewall rules" in po.verdict and po.way_out
    pf = path(snap(ip_forward=False), "r1")
    assert pf.way_out is False and "ip_forward is 0" in pf.verdict


def test_macvtap_hostdev_and_shut_off_paths() -> None:
    s = snap()
    p = path(s, "mv1")
    assert p.mode == "private"
    assert [(h.dev, h.role) for h in p.hops] == [("macvtap0", "macvtap"), ("eth3", "uplink")]
    assert p.way_out and "macvtap private" in p.verdict
    off = path(s, "off1")
    assert off.hops == () and off.way_out is False and "shut off" in off.verdict
    nets = tuple(
        replace(n, mode="hostdev", forward_dev="eth3") if n.name == "mv" else n for n in s.networks
    )
    ph = next(p for p in compute_paths(replace(s, networks=nets)) if p.vm == "mv1")
    assert ph.mode == "hostdev" and "PCI passthrough" in ph.verdict
    # a plain <interface type='direct'> (no network): the host NIC is the macvtap's lower link
    vms = tuple(
        replace(v, nics=(replace(v.nics[0], type="direct", network=None),))
        if v.name == "mv1"
        else v
        for v in s.vms
    )
    pd = next(p for p in compute_paths(replace(s, vms=vms)) if p.vm == "mv1")
    assert pd.mode == "direct" and [h.dev for h in pd.hops] == ["macvtap0", "eth3"]
    assert pd.way_out and "leaves through eth3 directly" in pd.verdict


def test_fdb_on_the_wrong_port_is_flagged() -> None:
    nl = netlink_state()
    fdb = tuple(
        replace(f, port="vnet0", port_index=4) if f.mac == "52:54:00:aa:00:01" else f
        for f in nl.fdb
    )
    s = build_snapshot(replace(nl, fdb=fdb), virt_state(), firewall=firewall(),
                       guest_macs=GUEST_MACS)  # fmt: skip
    value, ok = ev(path(s, "nat-qemu"), "bridge", "FDB")
    assert ok is False and "learned on vnet0, not vnet5" in value


def test_nat_network_with_ipv6_says_ipv6_is_routed_not_nated() -> None:
    """libvirt's <forward mode='nat'> masquerades IPv4 only; its IPv6 is routed: the path
    says so (a note), and an IPv4-only NAT network has no such note."""
    from kvmtui.core.model import NetAddress

    s = snap()
    p4 = path(s, LIGHT_NAT)
    assert p4.mode == "nat" and not any("IPv6" in n for n in p4.notes)
    nets = tuple(
        replace(n, addresses=(*n.addresses, NetAddress("fd00:122::1", 64, "ipv6")))
        if n.mode == "nat" else n
        for n in s.networks
    )  # fmt: skip
    p6 = next(p for p in compute_paths(replace(s, networks=nets)) if p.vm == LIGHT_NAT)
    assert p6.way_out and p6.verdict == p4.verdict  # IPv4 still leaves NATed
    (note,) = [n for n in p6.notes if "IPv6" in n]
    assert "fd00:122::/64 is routed, not NATed" in note and "route fd00:122::/64 back" in note
