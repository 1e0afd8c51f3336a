"""The capture view at 80x24 (src, dst and proto kept whole), the kernel's fate in words on the
"ends at" row, the DHCP view's keys and wording, and the export dialog's path line.

The sessions are the fake of test_capture_screen (mock: the kernel cannot be driven row by row);
their rows and DHCP transactions come from the real correlator and DHCP tracker. The fate on a
row here is set by hand (the lab test in test_capture_fate.py gets it from the kernel).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from kvmtui.capture.dhcp import DhcpMessage, DhcpTransaction
from kvmtui.doctor.model import Fate
from kvmtui.lab import spec
from kvmtui.ui.widgets.capture_detail import CaptureDetail
from kvmtui.ui.widgets.capture_dhcp import CaptureDhcp
from tests.ui.conftest import make_app
from tests.ui.helpers import wait_for
from tests.ui.sample import sample_path
from tests.ui.test_capture_screen import (
    NAT_IP,
    Factory,
    FakeSession,
    batch,
    hop_status,
    iso_capture,
    nat_capture,
    nat_factory,
    open_capture,
    table_of,
)

FATE = Fate(spec.ISO_BRIDGE, "NETFILTER_DROP", "nft_do_chain",
            f"dropped at {spec.ISO_BRIDGE} by the firewall (nftables rule)")  # fmt: skip


def _widths(t: Any) -> int:
    return sum(c.get_render_width(t) for c in t.columns.values())


async def test_80x24_keeps_src_dst_and_proto_with_nat_and_a_stopped_row() -> None:
    rows, txs = nat_capture()
    iso = iso_capture()
    path = sample_path("nat-light")
    factory = Factory(lambda p, b: FakeSession(p, [batch(path, rows + iso, txs)]))
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_capture(pilot, factory)
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == len(rows) + 1)
        labels = [str(c.label) for c in t.columns.values()]
        assert labels == ["#", "hops", "", "src → dst", "proto"]
        # every column fits the table: nothing is scrolled off to the right
        widths = [(str(c.label), c.get_render_width(t)) for c in t.columns.values()]
        assert _widths(t) <= t.scrollable_content_region.width, widths
        lines = {k: t.text_of(k) for k in t.keys}
        nat = next(v for v in lines.values() if "NAT " in v[3] and "echo-req" in v[4])
        flow, *nat_lines = nat[3].split("\n")
        assert flow == f"{NAT_IP} → 198.51.100.1"
        assert "".join(x.strip() for x in nat_lines).startswith(f"NAT {NAT_IP}:7 →")
        assert nat[1] == "●●●" and nat[4].startswith("ICMP echo-req")
        flow, *stop = lines[t.keys[-1]][3].split("\n")
        assert flow == f"{spec.lab_vm('iso-a').mac} → ff:ff:ff:ff:ff:ff" or " → " in flow
        assert " ".join(x.strip() for x in stop).startswith(f"✗ ends at {spec.ISO_BRIDGE}:")


async def test_fate_words_on_the_ends_at_row_and_the_reason_in_the_detail() -> None:
    (row,) = iso_capture()
    dropped = replace(row, fate=FATE)
    path = sample_path("iso-a")
    factory = Factory(lambda p, b: FakeSession(p, [batch(path, [dropped], hops=hop_status(path))]))
    for size in ((120, 30), (80, 24)):
        await _shows_fate(factory, size)


async def _shows_fate(factory: Factory, size: tuple[int, int]) -> None:
    async with make_app().run_test(size=size) as pilot:
        screen = await open_capture(pilot, factory, vm="iso-a")
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 1)
        text = " ".join(" ".join(t.text_of(t.keys[0])).split())
        assert f"✗ dropped at {spec.ISO_BRIDGE} by the firewall (nftables rule)" in text
        assert "no way out" not in text  # the kernel's word replaces the model's guess
        detail = screen.query_one(CaptureDetail)
        await wait_for(pilot, lambda: detail.key == "1")
        head = str(detail.query_one("#detail-head").render())
        assert "kernel: NETFILTER_DROP in nft_do_chain" in head


def _discover_only(xid: int, t: float) -> DhcpTransaction:
    mac = spec.lab_vm("nat-light").mac
    m = DhcpMessage("discover", "vnet0", t, mac, "0.0.0.0", "255.255.255.255", "0.0.0.0", None)
    return DhcpTransaction(xid, mac, "nat-light", (m,), None, None)


async def test_dhcp_view_keys_time_order_and_only_what_was_seen() -> None:
    rows, txs = nat_capture()
    (full,) = txs
    # the messages handed over out of time order: the view lists them by time
    shuffled = replace(full, messages=tuple(reversed(full.messages)))
    lone = _discover_only(0x5EED0002, full.messages[0].time + 5)
    path = sample_path("nat-light")
    factory = Factory(lambda p, b: FakeSession(p, [batch(path, rows, [shuffled, lone])]))
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_capture(pilot, factory)
        await pilot.press("2")
        view = screen.query_one(CaptureDhcp)
        await wait_for(pilot, lambda: view.table.row_count == 2 and view.table.has_focus)
        first = view.current()
        assert first is not None and first.xid == full.xid
        assert view.row_text(first)[2] == "Discover Offer Request Ack"
        detail = str(view.query_one("#dhcp-detail").render())
        order = [detail.index(w) for w in ("Discover", "Offer ", "Request", "Ack ")]
        assert order == sorted(order), detail
        assert f"server {full.server.mac} = " in detail  # type: ignore[union-attr]
        assert "its Offer arrived on virbr0" in detail
        await pilot.press("j")
        await wait_for(pilot, lambda: (c := view.current()) is not None and c.xid == lone.xid)
        assert view.row_text(lone)[-2] == "no Offer seen"
        detail = str(view.query_one("#dhcp-detail").render())
        assert "no Offer seen" in detail and "server " not in detail.split("\n")[-1][:7]
        await pilot.press("k")
        await wait_for(pilot, lambda: (c := view.current()) is not None and c.xid == full.xid)
        await pilot.press("G")
        await wait_for(pilot, lambda: (c := view.current()) is not None and c.xid == lone.xid)
        await pilot.press("g")
        await wait_for(pilot, lambda: (c := view.current()) is not None and c.xid == full.xid)


async def test_export_dialog_shows_the_path_it_will_write(tmp_path: Any) -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        target = tmp_path / "x.pcapng"
        screen = await open_capture(pilot, nat_factory(), export_default=str(target))
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 12)
        await pilot.press("e")
        hint = screen.query_one("#capture-input-hint")
        await wait_for(pilot, lambda: hint.display and str(target) in str(hint.render()))
        assert "12 rows kept" in str(hint.render())
        inp = screen.query_one("#capture-input")
        inp.value = "~/y.pcapng"  # type: ignore[attr-defined]
        want = os.path.join(os.path.expanduser("~"), "y.pcapng")
        await wait_for(pilot, lambda: f"will write {want}" in str(hint.render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not hint.display)
