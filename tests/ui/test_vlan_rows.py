"""A tagged packet in the capture view's columns and detail header: the VLAN comes first in
the proto column (also at 80x24) and the hop where the tag differs names it. The row is the
real correlator's, from frames built with scapy (no sockets: test_engine.py sends them live)."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import Dot1Q, Ether

from kvmtui.capture.correlate import Correlator, HopSpec, PacketRow
from kvmtui.ui.widgets.capture_detail import row_header
from kvmtui.ui.widgets.capture_table import narrow_proto, proto_info

VM, LAN = "52:54:00:ee:00:02", "02:00:0a:00:00:01"
HOPS = [HopSpec(0, "vnet1", "tap", True), HopSpec(1, "br0", "bridge", True),
        HopSpec(2, "ens9", "uplink", True)]  # fmt: skip


def _row(tap_tags: tuple[int, ...], up_tags: tuple[int, ...]) -> PacketRow:
    def frame(tags: tuple[int, ...]) -> bytes:
        p = Ether(src=VM, dst=LAN)
        for t in tags:
            p = p / Dot1Q(vlan=t)
        return bytes(p / IP(src="10.0.0.50", dst="10.0.0.1", id=5) / ICMP(id=9, seq=4) / b"x")

    c = Correlator(HOPS, VM, "bridge", window_ns=10**8)
    for hop, tags in ((0, tap_tags), (1, tap_tags), (2, up_tags)):
        data = frame(tags)
        c.add((1000 + hop, hop, 0, len(data), data))
    (row,) = c.flush(0, force=True)
    return row


def test_tagged_at_the_tap_shows_in_the_proto_column() -> None:
    row = _row((20,), (20,))
    assert proto_info(row.frame) == "vlan 20 ICMP echo-request seq 4"
    assert narrow_proto(row.frame).startswith("vlan 20 ICMP")
    head = "\n".join(row_header(row))
    assert "vlan 20: ICMP echo-request" in head and "ens9 (uplink, received on)" in head


def test_untagged_at_the_tap_tagged_on_the_trunk_names_the_tag_on_that_hop() -> None:
    row = _row((), (100, 20))
    assert proto_info(row.frame) == "ICMP echo-request seq 4"
    head = "\n".join(row_header(row))
    assert "ens9 (uplink, received on, vlan 100.20)" in head
    assert "vnet1 (tap, received on)" in head
