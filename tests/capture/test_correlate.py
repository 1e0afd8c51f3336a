"""Hop correlation on hand-made sightings (frames built with scapy, no sockets): arrival order,
NAT candidates, retransmissions, flags. The socket side is covered by test_engine.py; here the
hard cases are made to happen on purpose (a ring handing over its block late, and so on)."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether

from kvmtui.capture.correlate import Correlator, HopSpec
from kvmtui.capture.ring import PACKET_OUTGOING, RawPacket

VM = "52:54:00:ee:00:01"
GW = "02:00:c0:a8:7a:01"
UP = "02:00:00:00:00:02"
NET = "02:00:00:00:00:01"
VM_IP, HOST_IP, INET = "192.168.122.50", "198.51.100.2", "198.51.100.1"

NAT_HOPS = [
    HopSpec(0, "vnet0", "tap", True),
    HopSpec(1, "virbr0", "bridge", True),
    HopSpec(3, "wan0", "uplink", False),
]
MS = 1_000_000


def ping(
    src: str, dst: str, smac: str, dmac: str, ident: int, seq: int, ipid: int, t: int = 8
) -> bytes:
    return bytes(
        Ether(src=smac, dst=dmac)
        / IP(src=src, dst=dst, id=ipid)
        / ICMP(type=t, id=ident, seq=seq)
        / (b"p%d" % seq * 10)
    )


def nat_corr(checks: list[tuple[object, ...]] | None = None) -> Correlator:
    def check(
        proto: int, inside: tuple[object, ...], outside: tuple[object, ...]
    ) -> tuple[bool | None, str | None]:
        if checks is not None:
            checks.append((proto, inside, outside))
        return True, "ok"

    return Correlator(
        NAT_HOPS,
        VM,
        "nat",
        local_nets=["192.168.122.1/24"],
        local_macs=[GW],
        window_ns=300 * MS,
        nat_check=check,
    )


def pkt(t_ms: float, hop: int, data: bytes, out: bool = False) -> RawPacket:
    return (int(t_ms * MS), hop, PACKET_OUTGOING if out else 0, len(data), data)


def test_nat_out_and_in_whatever_the_arrival_order() -> None:
    checks: list[tuple[object, ...]] = []
    c = nat_corr(checks)
    req_in = ping(VM_IP, INET, VM, GW, 7, 1, 100)
    req_out = ping(HOST_IP, INET, UP, NET, 9, 1, 100)  # MASQUERADE also changed the ICMP id
    rep_out = ping(INET, HOST_IP, NET, UP, 9, 1, 555, t=0)
    rep_in = ping(INET, VM_IP, GW, VM, 7, 1, 555, t=0)
    # the uplink's ring hands its block over first, the tap's last
    c.add(pkt(1.00, 3, req_out, out=True))
    c.add(pkt(1.05, 3, rep_out))
    c.add(pkt(0.99, 1, req_in))
    c.add(pkt(1.06, 1, rep_in, out=True))
    c.add(pkt(0.99, 0, req_in))
    c.add(pkt(1.07, 0, rep_in, out=True))
    rows = c.flush(int(2000 * MS))
    assert [r.direction for r in rows] == ["out", "in"]
    out, inn = rows
    assert [h.dev for h in out.hops] == ["vnet0", "virbr0", "wan0"]
    assert [h.dev for h in inn.hops] == ["wan0", "virbr0", "vnet0"]
    assert out.nat is not None and (out.nat.from_, out.nat.to) == (f"{VM_IP}:7", f"{HOST_IP}:9")
    assert inn.nat is not None and (inn.nat.from_, inn.nat.to) == (f"{HOST_IP}:9", f"{VM_IP}:7")
    # the conntrack check is asked about the outgoing direction both times
    assert checks[0] == (1, (VM_IP, 7, INET, 7), (HOST_IP, 9, INET, 9))
    assert checks[1] == (1, (VM_IP, 7, INET, 7), (HOST_IP, 9, INET, 9))
    assert out.offsets_us()[-1][1] == 10.0  # wan0 10 us after the tap


def test_host_traffic_on_the_nat_uplink_is_dropped() -> None:
    c = nat_corr()
    c.add(pkt(1, 3, ping(HOST_IP, INET, UP, NET, 1, 1, 9)))  # the host's own ping
    assert c.flush(int(2000 * MS)) == []
    assert c.discarded == 1


def test_stopped_before_the_uplink_is_flagged_after_the_window() -> None:
    c = nat_corr()
    c.add(pkt(1, 0, ping(VM_IP, INET, VM, GW, 7, 1, 100)))
    c.add(pkt(1, 1, ping(VM_IP, INET, VM, GW, 7, 1, 100)))
    assert c.flush(int(100 * MS)) == []  # still within the window: it may yet show on wan0
    (row,) = c.flush(int(400 * MS))
    assert row.missing == ("wan0",)
    assert row.stopped == "seen on vnet0, virbr0; never on wan0"


def test_local_destination_needs_no_uplink() -> None:
    c = nat_corr()
    c.add(pkt(1, 0, ping(VM_IP, "192.168.122.1", VM, GW, 7, 1, 100)))
    c.add(pkt(1, 1, ping(VM_IP, "192.168.122.1", VM, GW, 7, 1, 100)))
    (row,) = c.flush(int(2 * MS))  # complete at once: no window wait
    assert row.expected == ("vnet0", "virbr0") and row.stopped is None


def test_same_bytes_again_at_a_hop_is_another_packet() -> None:
    c = nat_corr()
    arp = bytes(
        Ether(src=VM, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=VM_IP, pdst="192.168.122.1", hwsrc=VM)
    )
    for t in (1, 50):
        c.add(pkt(t, 0, arp))
        c.add(pkt(t, 1, arp))
    rows = c.flush(int(2000 * MS))
    assert len(rows) == 2 and all(len(r.hops) == 2 for r in rows)


def test_bridged_learns_local_macs() -> None:
    hops = [
        HopSpec(0, "vnet1", "tap", True),
        HopSpec(1, "br0", "bridge", True),
        HopSpec(2, "ens9", "uplink", True),
    ]
    c = Correlator(hops, VM, "bridge", window_ns=300 * MS)
    other = "52:54:00:ee:00:09"
    # another VM on br0 pings ours: never via ens9
    c.add(pkt(1, 1, ping("10.0.0.9", "10.0.0.50", other, VM, 3, 1, 1)))
    c.add(pkt(1, 0, ping("10.0.0.9", "10.0.0.50", other, VM, 3, 1, 1), out=True))
    (r1,) = c.flush(int(500 * MS))
    assert r1.direction == "in" and r1.stopped is None
    # our reply to it is then not expected on ens9 either
    c.add(pkt(600, 0, ping("10.0.0.50", "10.0.0.9", VM, other, 3, 1, 2, t=0)))
    c.add(pkt(600, 1, ping("10.0.0.50", "10.0.0.9", VM, other, 3, 1, 2, t=0)))
    (r2,) = c.flush(int(601 * MS))
    assert r2.expected == ("vnet1", "br0") and r2.stopped is None


def test_isolated_dead_end() -> None:
    hops = [HopSpec(0, "vnet2", "tap", True), HopSpec(1, "virbr1", "bridge", True)]
    c = Correlator(
        hops,
        VM,
        "isolated",
        local_nets=["192.168.100.1/24"],
        way_out=False,
        verdict="no way out: isolated network (no <forward>)",
    )
    c.add(pkt(1, 0, ping("192.168.100.50", INET, VM, GW, 1, 1, 1)))
    c.add(pkt(1, 1, ping("192.168.100.50", INET, VM, GW, 1, 1, 1)))
    c.add(pkt(2, 0, ping("192.168.100.50", "192.168.100.1", VM, GW, 1, 2, 2)))
    c.add(pkt(2, 1, ping("192.168.100.50", "192.168.100.1", VM, GW, 1, 2, 2)))
    a, b = c.flush(int(2000 * MS))
    assert (
        a.stopped
        == "seen on vnet2, virbr1; goes no further: no way out: isolated network (no <forward>)"
    )
    assert b.stopped is None  # to its own gateway: fine


def test_hops_in_path_order_even_when_the_bridge_is_stamped_after_the_uplink() -> None:
    """A bridge forwards a frame to its out port before it hands a copy to its own promiscuous
    device, so the uplink's timestamp can precede the bridge's (seen on the real ens9/br0).
    The row still lists the hops tap -> bridge -> uplink, each with its own time."""
    c = Correlator(
        [
            HopSpec(0, "vnet1", "tap", True),
            HopSpec(1, "br0", "bridge", True),
            HopSpec(2, "ens9", "uplink", True),
        ],
        VM,
        "bridge",
        window_ns=300 * MS,
    )
    lan = "02:00:0a:00:00:01"
    req = ping("10.0.0.50", INET, VM, lan, 7, 1, 100)
    t0 = 1_000_000_000
    c.add((t0, 0, 0, len(req), req))
    c.add((t0 + 3_000, 2, PACKET_OUTGOING, len(req), req))  # the uplink first...
    c.add((t0 + 5_000, 1, 0, len(req), req))  # ...then the bridge's own copy
    (row,) = c.flush(t0 + 2000 * MS)
    assert [h.dev for h in row.hops] == ["vnet1", "br0", "ens9"]
    assert row.missing == () and row.stopped is None
    assert row.time_ns == t0
    assert dict(row.offsets_us()) == {"vnet1": 0.0, "br0": 5.0, "ens9": 3.0}


BR_HOPS = [
    HopSpec(0, "vnet1", "tap", True),
    HopSpec(1, "br0", "bridge", True),
    HopSpec(2, "ens9", "uplink", True),
]


def tagged(vlans: tuple[int, ...], data: bytes) -> bytes:
    """``data`` with 802.1Q tags pushed after the MACs, outer first."""
    tags = b"".join(b"\x81\x00" + v.to_bytes(2, "big") for v in vlans)
    return data[:12] + tags + data[12:]


def test_vlan_tag_pushed_on_the_uplink_is_one_packet_another_vlan_is_another() -> None:
    """A VLAN-aware bridge sends the VM's untagged frame out of its trunk with tag 20 (and a
    provider bridge adds an outer 100): one packet, each hop with the tags it carried there.
    The same bytes on VLAN 30 are another VM's packet, not a third sighting of this one."""
    c = Correlator(BR_HOPS, VM, "bridge", local_macs=[NET], window_ns=300 * MS)
    req = ping("10.0.0.50", "10.0.0.1", VM, UP, 7, 1, 300)
    c.add(pkt(1.00, 0, req))
    c.add(pkt(1.01, 1, tagged((20,), req)))
    c.add(pkt(1.02, 2, tagged((30,), req), out=True))  # not ours: VLAN 30
    c.add(pkt(1.03, 2, tagged((100, 20), req), out=True))
    rows = c.flush(int(2000 * MS), force=True)
    ours = [r for r in rows if r.hops[0].dev == "vnet1"]
    assert len(ours) == 1
    r = ours[0]
    assert [(h.dev, h.frame.vlans) for h in r.hops] == [
        ("vnet1", ()), ("br0", (20,)), ("ens9", (100, 20))
    ]  # fmt: skip
    assert not r.missing and r.frame.vlans == ()
    # the VLAN 30 sighting did not join: it stands alone (and is only on the uplink)
    assert all(h.frame.vlans != (30,) for row in ours for h in row.hops)


def test_trace_prints_rows_in_time_order_once_no_older_row_can_come() -> None:
    """A packet the correlator completes at once comes out before an older one it held for
    its window: trace waits a window (and a margin) before a row goes out, so the older one
    is printed first; a row still waiting for its drop reason holds the ones behind it."""
    from types import SimpleNamespace

    from kvmtui.commands.capture import REORDER_NS, _ready

    def row(t_ms: int, lost: bool = False) -> SimpleNamespace:
        return SimpleNamespace(time_ns=t_ms * MS, fate=None, missing=("wan0",) if lost else (),
                               dead_end=None)  # fmt: skip

    window = 400 * MS
    late_old, early_new = row(1000), row(1300)
    waiting = [[early_new, 0], [late_old, 0]]  # the order the polls gave them
    waiting.sort(key=lambda w: w[0].time_ns)
    assert _ready(waiting, 1000 * MS + window, window, False) == 0  # too soon for either
    now = 1000 * MS + window + REORDER_NS
    assert _ready(waiting, now, window, False) == 1 and waiting[0][0] is late_old
    assert _ready(waiting, 2000 * MS, window, False) == 2
    lost = [[row(1000, lost=True), 0], [row(1100), 0]]
    assert _ready(lost, 3000 * MS, window, True) == 0  # the head waits for the kernel's word
    assert _ready(lost, 3000 * MS, window, False) == 2  # (no tracer: nothing to wait for)
