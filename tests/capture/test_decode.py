"""The struct decoder against scapy's own dissection, and fuzzing of decode + dissect."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from kvmtui.capture import dissect
from kvmtui.capture.decode import decode

VM = "52:54:00:ee:00:01"
GW = "02:00:c0:a8:7a:01"


def _dhcp_offer() -> bytes:
    return bytes(
        Ether(src=GW, dst=VM)
        / IP(src="192.168.122.1", dst="192.168.122.141", id=9)
        / UDP(sport=67, dport=68)
        / BOOTP(
            op=2, xid=0xDEADBEEF, yiaddr="192.168.122.141", chaddr=bytes.fromhex("525400ee0001")
        )
        / DHCP(
            options=[
                ("message-type", "offer"),
                ("server_id", "192.168.122.1"),
                ("lease_time", 3600),
                ("router", "192.168.122.1"),
                ("name_server", "192.168.122.1", "9.9.9.9"),
                "end",
            ]
        )
    )


SAMPLES = [
    bytes(
        Ether(src=VM, dst=GW)
        / IP(src="192.168.122.50", dst="198.51.100.1", id=4242)
        / ICMP(id=7, seq=3)
        / (b"x" * 56)
    ),
    bytes(
        Ether(src=VM, dst=GW)
        / Dot1Q(vlan=42)
        / IP(src="10.0.0.50", dst="10.0.0.1")
        / UDP(sport=5353, dport=53)
        / b"query"
    ),
    bytes(
        Ether(src=VM, dst=GW)
        / IP(src="10.0.0.50", dst="10.0.0.1")
        / TCP(sport=40000, dport=80, flags="S", seq=1000)
    ),
    bytes(
        Ether(src=VM, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, psrc="10.0.0.50", pdst="10.0.0.1", hwsrc=VM)
    ),
    bytes(
        Ether(src=VM, dst=GW) / IPv6(src="fe80::1", dst="fe80::2") / ICMPv6EchoRequest(id=5, seq=1)
    ),
    _dhcp_offer(),
]


def test_decode_matches_scapy() -> None:
    for raw in SAMPLES:
        f = decode(raw)
        p = Ether(raw)
        assert f.error is None, f
        assert f.src_mac == p.src and f.dst_mac == p.dst
        if IP in p:
            assert (f.src_ip, f.dst_ip, f.ip_id, f.ttl) == (
                p[IP].src,
                p[IP].dst,
                p[IP].id,
                p[IP].ttl,
            )
        if UDP in p:
            assert (f.sport, f.dport) == (p[UDP].sport, p[UDP].dport)
        if TCP in p:
            assert (f.sport, f.dport, f.tcp_flags) == (
                p[TCP].sport,
                p[TCP].dport,
                int(p[TCP].flags),
            )
        if ICMP in p:
            assert (f.icmp_type, f.icmp_id, f.icmp_seq) == (8, 7, 3)
            assert f.payload_len == 56
        if Dot1Q in p:
            assert f.vlan == 42 and f.proto == "udp"
        if ARP in p:
            assert (f.proto, f.arp_op, f.src_ip, f.dst_ip) == ("arp", 1, "10.0.0.50", "10.0.0.1")
        if IPv6 in p:
            assert (f.proto, f.icmp_type, f.icmp_id) == ("icmpv6", 128, 5)


def test_decode_dhcp_fields() -> None:
    f = decode(_dhcp_offer())
    d = f.dhcp
    assert d is not None
    assert (d.msg_type, d.op, d.xid) == ("offer", 2, 0xDEADBEEF)
    assert d.client_mac == VM and d.yiaddr == "192.168.122.141"
    assert d.server_id == "192.168.122.1" and d.lease_time == 3600 and d.router == "192.168.122.1"
    assert d.dns == ("192.168.122.1", "9.9.9.9")
    assert "Offer" in f.summary() and "0xdeadbeef" in f.summary()


def test_key_survives_nat_but_not_payload_change() -> None:
    """MASQUERADE rewrites addresses, ports and checksums, not the IP ID or the payload."""
    inside = (
        Ether(src=VM, dst=GW)
        / IP(src="192.168.122.50", dst="198.51.100.1", id=77)
        / ICMP(id=7, seq=1)
        / b"payload"
    )
    outside = (
        Ether(src="aa:aa:aa:aa:aa:aa", dst="bb:bb:bb:bb:bb:bb")
        / IP(src="198.51.100.2", dst="198.51.100.1", id=77, ttl=63)
        / ICMP(id=9, seq=1)
        / b"payload"
    )
    other = (
        Ether(src=VM, dst=GW)
        / IP(src="192.168.122.50", dst="198.51.100.1", id=77)
        / ICMP(id=7, seq=1)
        / b"payloaX"
    )
    a, b, c = (decode(bytes(x)) for x in (inside, outside, other))
    assert a.key == b.key
    assert a.key != c.key
    assert a.flow == ("192.168.122.50", 7, "198.51.100.1", 7)
    assert b.flow == ("198.51.100.2", 9, "198.51.100.1", 9)


def test_truncated_frames_say_where_they_stop() -> None:
    raw = SAMPLES[0]
    assert decode(raw[:10]).error == "truncated ethernet header"
    assert decode(raw[:20]).error == "truncated IPv4 header"
    assert decode(raw[:36]).error == "truncated ICMP header"
    f = decode(raw[:50])  # the IP header claims more than there is: decode what is there
    assert f.error is None and f.icmp_id == 7 and f.payload_len == 8


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randint(0, 3)
        if op == 0 and b:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 1 and b:
            del b[rnd.randrange(len(b)) :]
        elif op == 2:
            b.insert(rnd.randrange(len(b) + 1), rnd.randrange(256))
        elif b:
            i = rnd.randrange(len(b))
            b[i : i + 2] = b"\xff\xff"
    return bytes(b)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    f = decode(data)
    assert f.length == len(data)
    f.summary()
    _ = f.key, f.flow


@settings(max_examples=1500, deadline=None)
@given(st.integers(min_value=0, max_value=len(SAMPLES) - 1), st.integers(0, 2**32))
def test_fuzz_mutated_frames_never_raise(i: int, seed: int) -> None:
    data = _mutate(SAMPLES[i], random.Random(seed))
    f = decode(data)
    f.summary()
    _ = f.key


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(SAMPLES) - 1), st.integers(0, 2**32))
def test_fuzz_dissect_never_raises(i: int, seed: int) -> None:
    data = _mutate(SAMPLES[i], random.Random(seed))
    lines = dissect.dissect(data)
    assert lines and all(isinstance(x, str) for x in lines)
    assert isinstance(dissect.summary(data), str)


def test_dissect_names_the_layers() -> None:
    text = "\n".join(dissect.dissect(_dhcp_offer()))
    assert "###[ BOOTP ]###" in text and "###[ DHCP options ]###" in text
    assert "192.168.122.141" in text
    garbage = dissect.dissect(b"\x01")
    assert garbage and isinstance(garbage[0], str)


def test_raw_payload_frames() -> None:
    f = decode(bytes(Ether(src=VM, dst=GW, type=0x88B5) / Raw(b"abc" * 20)))
    assert f.net == "other" and f.ethertype == 0x88B5 and f.payload_len == 60


def test_vlan_tags_outer_first_with_qinq() -> None:
    """802.1Q, 802.1ad QinQ and the old 0x9100 outer tag: every VLAN ID, outer first, on the
    frame and in its summary; the packet inside decoded as if untagged."""
    inner = IP(src="10.0.0.5", dst="10.0.0.1", id=9) / ICMP(id=3, seq=1) / (b"v" * 20)
    plain = decode(bytes(Ether(src=VM, dst=GW) / inner))
    q = decode(bytes(Ether(src=VM, dst=GW) / Dot1Q(vlan=20) / inner))
    qinq = decode(
        bytes(Ether(src=VM, dst=GW, type=0x88A8) / Dot1Q(vlan=100) / Dot1Q(vlan=20) / inner)
    )
    old = decode(bytes(Ether(src=VM, dst=GW, type=0x9100) / Dot1Q(vlan=7) / Dot1Q(vlan=20) / inner))
    assert plain.vlans == () and plain.vlan is None and plain.vlan_label == ""
    assert (q.vlans, q.vlan) == ((20,), 20)
    assert (qinq.vlans, qinq.vlan) == ((100, 20), 100)
    assert old.vlans == (7, 20)
    assert q.summary() == "vlan 20: " + plain.summary()
    assert qinq.summary().startswith("vlan 100.20: ICMP echo-request 10.0.0.5 > 10.0.0.1")
    assert qinq.summary(tags=False) == plain.summary()
    for f in (q, qinq, old):  # a tag never changes what identifies the packet across hops
        assert f.key == plain.key and f.flow == plain.flow and f.proto == "icmp"
    eth = bytes.fromhex(GW.replace(":", "")) + bytes.fromhex(VM.replace(":", ""))
    assert decode(eth + b"\x81\x00").error == "truncated VLAN tag"
    assert decode(eth + b"\x88\xa8" * 20).error == "more than 8 VLAN tags"
    bad_ihl = decode(eth + b"\x08\x00\x4f" + bytes(30)).error
    assert bad_ihl == "truncated IPv4 header (60 bytes said, 31 there)"


def test_100k_random_and_mutated_frames_through_decode_correlate_and_dissect() -> None:
    """The issue's fuzz figure: 100,000 frames (random bytes, and real frames mutated, tagged
    and cut) through decode and the correlator on three hops, every 50th also through
    scapy's dissection: no exception, every frame accounted for (a row or a non-VM frame)."""
    from kvmtui.capture.correlate import Correlator, HopSpec

    hops = [HopSpec(0, "vnet0", "tap", True), HopSpec(1, "br0", "bridge", True),
            HopSpec(2, "ens9", "uplink", False)]  # fmt: skip
    corr = Correlator(hops, VM, "bridge", local_macs=[GW], window_ns=10_000_000, max_open=512)
    rnd = random.Random(20261203)
    seeds = [*SAMPLES, bytes(Ether(src=VM, dst=GW) / Dot1Q(vlan=5) / Dot1Q(vlan=6) / IP())]
    rows = vm_frames = 0
    for i in range(100_000):
        if i % 4 == 0:
            data = rnd.randbytes(rnd.randrange(0, 200))
        else:
            data = _mutate(rnd.choice(seeds), rnd)
        hop = rnd.randrange(3)
        f = decode(data)
        f.summary()
        _ = f.key, f.flow, f.vlan_label
        if f.src_mac == VM or f.dst_mac == VM or hop == 2:
            vm_frames += 1
        corr.add((i * 1000, hop, rnd.choice((0, 4)), len(data), data))
        if i % 1000 == 999:
            rows += len(corr.flush(i * 1000))
        if i % 50 == 0:
            assert dissect.dissect(data) and isinstance(dissect.summary(data), str)
    rows += len(corr.flush(0, force=True))
    assert 0 < rows <= vm_frames
