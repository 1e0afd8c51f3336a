"""The live capture screen (issue 5's TUI part).

Two kinds of tests:

- Pilot and snapshot tests with a :class:`FakeSession`. It stands in for the kernel where the
  screen must be frozen or driven precisely (a tap vanishing, a BPF restart, a refused filter):
  it hands the screen batches built by the REAL correlator and DHCP tracker from hand-made
  frames (scapy-built bytes with fixed timestamps), so lanes, offsets, NAT text and the DHCP
  server's name are computed by the product's own code, only the sockets are replaced.
- Lab tests (``lab`` marker) on the real lab: the app over ``LiveHost(uri, netns=host ns)``,
  the NAT light VM selected, ``c`` pressed, the VM pings 198.51.100.1, and the rows show its
  tap, virbr0 and wan0 lit with the NAT translation; the host-only VM's packet is flagged as
  never reaching an uplink. Run them on the shared lab with
  ``KVMTUI_LAB_PREFIX=kvdev- KVMTUI_LAB_REUSE=1 .venv/bin/pytest tests/ui/test_capture_screen.py``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kvmtui.capture.correlate import Correlator, HopSpec, PacketRow
from kvmtui.capture.dhcp import DhcpTracker, DhcpTransaction, HostView, LeaseCheck
from kvmtui.capture.engine import (
    PROMISC_EXPLANATION,
    CaptureBatch,
    CaptureError,
    CaptureEvent,
    HopStatus,
)
from kvmtui.capture.ring import PACKET_OUTGOING
from kvmtui.core.model import NicPath
from kvmtui.core.netns import in_netns
from kvmtui.lab import spec
from kvmtui.ui.app import KvmApp
from kvmtui.ui.screens.capture import NO_LIVE_SOURCE, CaptureHelp, CaptureScreen
from kvmtui.ui.widgets.capture_detail import CaptureDetail
from kvmtui.ui.widgets.capture_dhcp import CaptureDhcp
from kvmtui.ui.widgets.capture_hops import CaptureHops
from kvmtui.ui.widgets.capture_table import CapturePacketTable
from kvmtui.ui.widgets.path_view import HopBox
from tests.ui.conftest import make_app
from tests.ui.helpers import loaded, wait_for
from tests.ui.sample import FROZEN_NOW, IPS, VIRBR0_MAC, VIRBR1_MAC, WAN0_MAC, sample_path

NAT_LIGHT = spec.lab_vm("nat-light")
ISO_A = spec.lab_vm("iso-a")
NAT_IP = IPS["nat-light"]
ISO_IP = IPS["iso-a"]
INET_MAC = "02:00:c6:33:64:01"
T0 = int(FROZEN_NOW * 1e9)
US = 1000


# --- frozen data: real correlator and DHCP tracker over hand-made frames ----------------------


def _frames() -> Any:
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    return Ether, IP, ICMP, UDP, TCP, ARP, BOOTP, DHCP


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def nat_capture() -> tuple[list[PacketRow], list[DhcpTransaction]]:
    """nat-light's capture: pings through NAT, one stopped before wan0, ARP, DNS to the host,
    a TCP SYN with its port translated, and a DHCP exchange with libvirt's dnsmasq."""
    Ether, IP, ICMP, UDP, TCP, ARP, BOOTP, DHCP = _frames()
    tap, br, up = NAT_LIGHT.tap or "vnet0", spec.NAT_BRIDGE, spec.UPLINK
    specs = [HopSpec(0, tap, "tap", True), HopSpec(1, br, "bridge", True),
             HopSpec(3, up, "uplink", False)]  # fmt: skip

    def nat_check(proto: int, inside: tuple[object, ...], outside: tuple[object, ...]) -> Any:
        return True, f"conntrack: {inside[0]}:{inside[1]} -> {outside[2]}:{outside[3]}"

    corr = Correlator(
        specs, NAT_LIGHT.mac, "nat", local_nets=[f"{spec.NAT_GATEWAY}/24"],
        local_macs=[VIRBR0_MAC], nat_check=nat_check,
    )  # fmt: skip
    host = HostView({VIRBR0_MAC: br}, {spec.NAT_GATEWAY: br}, {br: spec.NAT_NET}, (up,))
    dhcp = DhcpTracker(host, {NAT_LIGHT.mac: NAT_LIGHT.name})
    txs: dict[int, DhcpTransaction] = {}
    vm, gw = NAT_LIGHT.mac, VIRBR0_MAC

    def feed(t_us: int, hop: int, pkt: Any, out: bool = False) -> None:
        data = bytes(pkt)
        s = corr.add((T0 + t_us * US, hop, PACKET_OUTGOING if out else 0, len(data), data))
        if s is not None and s.frame.dhcp is not None:
            tx = dhcp.add(s.frame, s.dev, s.role, s.time_ns, s.hop)
            if tx is not None:
                txs[tx.xid] = tx

    def ping(seq: int, t: int, *, reach_wan: bool = True, reply: bool = True) -> None:
        req = IP(src=NAT_IP, dst=spec.INTERNET_IP, id=100 + seq) / ICMP(id=7, seq=seq) / (
            b"x" * 56
        )  # fmt: skip
        feed(t, 0, Ether(src=vm, dst=gw) / req)
        feed(t + 12, 1, Ether(src=vm, dst=gw) / req)
        if reach_wan:
            out = req.copy()
            out.src = spec.UPLINK_IP
            feed(t + 48, 3, Ether(src=WAN0_MAC, dst=INET_MAC) / out, True)
        if reply and reach_wan:
            rep = IP(src=spec.INTERNET_IP, dst=spec.UPLINK_IP, id=900 + seq) / ICMP(
                type=0, id=7, seq=seq
            ) / (b"x" * 56)  # fmt: skip
            feed(t + 5000, 3, Ether(src=INET_MAC, dst=WAN0_MAC) / rep)
            inside = rep.copy()
            inside.dst = NAT_IP
            feed(t + 5040, 1, Ether(src=gw, dst=vm) / inside, True)
            feed(t + 5051, 0, Ether(src=gw, dst=vm) / inside, True)

    def bootp(op: int, kind: str, t: int, hops: Sequence[int], **ip: Any) -> None:
        yi = NAT_IP if kind in ("offer", "ack") else "0.0.0.0"
        opts: list[Any] = [("message-type", kind)]
        if op == 2:
            opts += [("server_id", spec.NAT_GATEWAY), ("lease_time", 3600)]
        else:
            opts += [("requested_addr", NAT_IP)] if kind == "request" else []
        opts.append("end")
        src_mac = gw if op == 2 else vm
        for i, hop in enumerate(hops):
            pkt = (
                Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff" if op == 1 else vm)
                / IP(id=ip.get("id", 0), **{k: v for k, v in ip.items() if k != "id"})
                / UDP(sport=68 if op == 1 else 67, dport=67 if op == 1 else 68)
                / BOOTP(op=op, xid=0x5EED0001, chaddr=_mac_bytes(vm), yiaddr=yi)
                / DHCP(options=opts)
            )
            feed(t + i * 15, hop, pkt, op == 2)

    bootp(1, "discover", 0, [0, 1], src="0.0.0.0", dst="255.255.255.255", id=1)
    bootp(2, "offer", 3000, [1, 0], src=spec.NAT_GATEWAY, dst=NAT_IP, id=2)
    bootp(1, "request", 3400, [0, 1], src="0.0.0.0", dst="255.255.255.255", id=3)
    bootp(2, "ack", 3700, [1, 0], src=spec.NAT_GATEWAY, dst=NAT_IP, id=4)
    arp = Ether(src=vm, dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc=vm, psrc=NAT_IP, pdst=spec.NAT_GATEWAY
    )  # fmt: skip
    feed(10_000, 0, arp)
    feed(10_011, 1, arp)
    ping(1, 20_000)
    ping(2, 1_020_000, reach_wan=False)  # dropped between virbr0 and wan0
    dns = Ether(src=vm, dst=gw) / IP(src=NAT_IP, dst=spec.NAT_GATEWAY, id=300) / UDP(
        sport=41000, dport=53
    ) / (b"q" * 30)  # fmt: skip
    feed(1_500_000, 0, dns)
    feed(1_500_010, 1, dns)
    syn = IP(src=NAT_IP, dst=spec.INTERNET_IP, id=400) / TCP(sport=40000, dport=80, flags="S")
    feed(2_000_000, 0, Ether(src=vm, dst=gw) / syn)
    feed(2_000_013, 1, Ether(src=vm, dst=gw) / syn)
    out = syn.copy()
    out.src, out[TCP].sport = spec.UPLINK_IP, 61000
    feed(2_000_051, 3, Ether(src=WAN0_MAC, dst=INET_MAC) / out, True)
    ping(3, 3_000_000)
    rows = corr.flush(T0 + 10**10, force=True)
    return rows, list(txs.values())


def iso_capture() -> list[PacketRow]:
    """iso-a (host-only) sends a ping to 198.51.100.1: tap and virbr1, then nowhere."""
    Ether, IP, ICMP, *_ = _frames()
    p = sample_path("iso-a")
    specs = [HopSpec(0, ISO_A.tap or "vnet2", "tap", True),
             HopSpec(1, spec.ISO_BRIDGE, "bridge", True)]  # fmt: skip
    corr = Correlator(
        specs, ISO_A.mac, "isolated", local_nets=[f"{spec.ISO_GATEWAY}/24"],
        local_macs=[VIRBR1_MAC], way_out=False, verdict=p.verdict,
    )  # fmt: skip
    pkt = Ether(src=ISO_A.mac, dst=VIRBR1_MAC) / IP(src=ISO_IP, dst=spec.INTERNET_IP, id=55) / ICMP(
        id=9, seq=1
    )  # fmt: skip
    data = bytes(pkt)
    corr.add((T0, 0, 0, len(data), data))
    corr.add((T0 + 9 * US, 1, 0, len(data), data))
    return corr.flush(T0 + 10**10, force=True)


def hop_status(path: NicPath, *, counts: Sequence[int] = (), drops: Sequence[int] = (),
               state: dict[int, str] | None = None,
               rename: dict[int, str] | None = None) -> tuple[HopStatus, ...]:  # fmt: skip
    from kvmtui.capture.engine import capture_hops

    out = []
    for n, (i, h) in enumerate(capture_hops(path)):
        dev = (rename or {}).get(i, str(h.dev))
        out.append(
            HopStatus(
                i, dev, h.role, (state or {}).get(i, "capturing"),
                counts[n] if n < len(counts) else 0, drops[n] if n < len(drops) else 0,
                h.role == "bridge", "", PROMISC_EXPLANATION if h.role == "bridge" else None,
            )
        )  # fmt: skip
    return tuple(out)


class FakeSession:
    """Stands in for the kernel (mock: the screen must be frozen or driven step by step). It
    implements the engine's public API the screen uses; its batches carry rows and DHCP
    transactions made by the real correlator and DHCP tracker (see ``nat_capture``)."""

    def __init__(self, path: NicPath, batches: Sequence[CaptureBatch] = (), *,
                 bpf: str | None = None, fail: str | None = None) -> None:  # fmt: skip
        self.path = path
        self.bpf = bpf
        self.fail = fail
        self.queue: deque[CaptureBatch] = deque(batches)
        self.hops = hop_status(path)
        self.packets = 0
        self.paused = False
        self.cleared = 0
        self.started = False
        self.stopped = threading.Event()
        self.polls = 0

    def start(self) -> FakeSession:
        if self.fail:
            raise CaptureError(self.fail)
        self.started = True
        return self

    def push(self, batch: CaptureBatch) -> None:
        self.queue.append(batch)

    def poll(self) -> CaptureBatch:
        self.polls += 1
        if self.queue and not self.paused:
            b = self.queue.popleft()
            self.hops, self.packets = b.hops or self.hops, b.packets
            return b
        return CaptureBatch((), (), self.hops, (), self.packets, 0, 0, True)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def clear(self) -> None:
        self.cleared += 1

    def stop(self) -> None:
        self.stopped.set()


def batch(path: NicPath, rows: Sequence[PacketRow] = (), dhcp: Sequence[DhcpTransaction] = (),
          events: Sequence[CaptureEvent] = (), **kw: Any) -> CaptureBatch:  # fmt: skip
    hops = kw.pop("hops", None) or hop_status(path, counts=(14, 14, 6), drops=(0, 0, 2))
    return CaptureBatch(tuple(rows), tuple(dhcp), hops, tuple(events), kw.get("packets", 34),
                        kw.get("skipped", 0), 0, kw.get("running", True))  # fmt: skip


class Factory:
    """Records every session the screen asks for (one per BPF filter applied)."""

    def __init__(self, make: Callable[[NicPath, str | None], FakeSession]) -> None:
        self.make = make
        self.sessions: list[FakeSession] = []

    def __call__(self, path: NicPath, bpf: str | None) -> FakeSession:
        s = self.make(path, bpf)
        self.sessions.append(s)
        return s


def lease_ok(tx: DhcpTransaction) -> LeaseCheck:
    """Stands in for libvirt's lease list (the lab test checks the real one)."""
    return LeaseCheck("match", f"libvirt's lease on network {spec.NAT_NET} agrees: {NAT_IP}")


def nat_factory(split: int = 4) -> Factory:
    rows, txs = nat_capture()
    path = sample_path("nat-light")

    def make(p: NicPath, bpf: str | None) -> FakeSession:
        return FakeSession(p, [batch(path, rows[:split], txs), batch(path, rows[split:])], bpf=bpf)

    return Factory(make)


async def open_capture(pilot: Any, factory: Factory, vm: str = "nat-light",
                       **kw: Any) -> CaptureScreen:  # fmt: skip
    app = await loaded(pilot)
    path = sample_path(vm)
    screen = CaptureScreen(vm, spec.lab_vm(vm).mac, path, session_factory=factory,
                           lease_checker=kw.pop("lease_checker", lease_ok), poll_s=0.02,
                           **kw)  # fmt: skip
    app.push_screen(screen)
    await wait_for(pilot, lambda: screen.state != "starting")
    return screen


def table_of(screen: CaptureScreen) -> CapturePacketTable:
    return screen.query_one(CapturePacketTable)


def texts(screen: CaptureScreen) -> list[list[str]]:
    t = table_of(screen)
    return [t.text_of(k) for k in t.keys]


def col(screen: CaptureScreen, name: str) -> int:
    t = table_of(screen)
    return [str(c.label) for c in t.columns.values()].index(name)


# --- pilot tests ------------------------------------------------------------------------------


async def test_lanes_offsets_nat_and_stopped_flag() -> None:
    factory = nat_factory()
    async with make_app().run_test(size=(160, 40)) as pilot:
        screen = await open_capture(pilot, factory)
        await wait_for(pilot, lambda: len(table_of(screen).keys) == 12)
        t = table_of(screen)
        labels = [str(c.label) for c in t.columns.values()]
        assert labels[1:4] == ["vnet0", "virbr0", "wan0"]  # one lane per captured hop
        lines = texts(screen)
        by_proto = {ln[col(screen, "proto")]: ln for ln in lines}
        # the first ping: lit on all three lanes, offsets from the tap, NAT with conntrack
        req = next(ln for ln in lines if ln[col(screen, "proto")] == "ICMP echo-request seq 1")
        assert req[1:4] == ["●+0", "●+12µs", "●+48µs"]
        assert req[col(screen, "src → dst")] == f"{NAT_IP} → {spec.INTERNET_IP}"
        note = req[col(screen, "NAT / stopped")]
        assert note == f"{NAT_IP}:7 → {spec.UPLINK_IP}:7 ✓ct"
        # its reply came in on wan0 first, then virbr0, then the tap
        rep = next(ln for ln in lines if ln[col(screen, "proto")] == "ICMP echo-reply seq 1")
        assert rep[1:4] == ["●+51µs", "●+40µs", "●+0"] and rep[4] == "←"
        # the second ping never reached wan0: ✗ on its lane and the flag says so
        lost = by_proto["ICMP echo-request seq 2"]
        assert lost[1:4] == ["●+0", "●+12µs", "✗"]
        assert lost[col(screen, "NAT / stopped")] == "✗ never on wan0"
        # local traffic is not expected on the uplink: no ✗, no flag
        dns = by_proto["UDP len 30"]
        assert dns[1:4] == ["●+0", "●+10µs", "·"] and dns[col(screen, "NAT / stopped")] == ""
        assert by_proto["ARP who-has"][1:4] == ["●+0", "●+11µs", "·"]
        # the TCP SYN's source port was translated
        syn = by_proto["TCP [S] len 0"]
        assert syn[col(screen, "NAT / stopped")] == f"{NAT_IP}:40000 → {spec.UPLINK_IP}:61000 ✓ct"
        # hop header: device, role, seen, kernel drops; the promiscuous bridge explained
        hdr = screen.query_one(CaptureHops)
        assert [(h.dev, h.role, h.received, h.dropped) for h in hdr.hops] == [
            ("vnet0", "tap", 14, 0),
            ("virbr0", "bridge", 14, 0),
            ("wan0", "uplink", 6, 2),
        ]
        promisc = str(screen.query_one("#capture-promisc").render())
        assert "virbr0 promiscuous while capturing (restored on close) · F1: why" in promisc
        assert screen.query_one(CaptureHops).hops[1].message == PROMISC_EXPLANATION


async def test_host_only_packet_is_flagged_as_going_nowhere() -> None:
    rows = iso_capture()
    path = sample_path("iso-a")
    factory = Factory(lambda p, b: FakeSession(p, [batch(path, rows, hops=hop_status(path))]))
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_capture(pilot, factory, vm="iso-a")
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 1)
        assert [str(c.label) for c in t.columns.values()][1:3] == [ISO_A.tap, spec.ISO_BRIDGE]
        (line,) = texts(screen)
        assert line[1:3] == ["●+0", "●+9µs"]
        assert line[col(screen, "NAT / stopped")] == (
            f"✗ ends at {spec.ISO_BRIDGE}: no way out: isolated network"
        )
        detail = screen.query_one(CaptureDetail)
        await wait_for(pilot, lambda: detail.key == "1")
        head = str(detail.query_one("#detail-head").render())
        assert f"seen on {ISO_A.tap}, {spec.ISO_BRIDGE}; goes no further" in head


async def test_follow_keeps_cursor_when_user_moved_and_rows_are_bounded() -> None:
    rows, _ = nat_capture()
    path = sample_path("nat-light")
    factory = Factory(lambda p, b: FakeSession(p, [batch(path, rows[:6])]))
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_capture(pilot, factory, max_rows=8)
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 6)
        assert t.current_key() == "6"  # follows the newest row
        await pilot.press("k", "k")
        assert t.current_key() == "4" and not t.follow
        factory.sessions[0].push(batch(path, rows[6:]))  # 6 more rows: 12 > max_rows 8
        await wait_for(pilot, lambda: t.keys[-1] == "12")
        assert t.keys == [str(i) for i in range(5, 13)]  # bounded, oldest dropped
        assert t.current_key() is not None and t.current_key() == "5"  # the row under the
        # cursor (4) went away; the cursor stays at the top rather than jumping to the end
        await pilot.press("G")
        assert t.current_key() == "12" and t.follow


async def test_detail_pane_decodes_lazily_with_scapy() -> None:
    factory = nat_factory(split=12)
    async with make_app().run_test(size=(120, 40)) as pilot:
        screen = await open_capture(pilot, factory)
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 12)
        detail = screen.query_one(CaptureDetail)
        key = next(k for k in t.keys if "echo-request seq 1" in " ".join(t.text_of(k)))
        t.move_cursor(row=t.keys.index(key))
        t.follow = False
        await wait_for(pilot, lambda: detail.key == key)
        head = str(detail.query_one("#detail-head").render())
        assert "hops: vnet0 (tap, received on) +0 → virbr0 (bridge, received on) +12µs" in head
        assert f"NAT: {NAT_IP}:7 → {spec.UPLINK_IP}:7 (conntrack agrees)" in head
        await wait_for(pilot, lambda: detail.decoded_lines, timeout=20)  # scapy's first import
        body = "\n".join(detail.decoded_lines)
        assert "###[ ICMP ]###" in body and f"src       = {NAT_IP}" in body  # the VM-side frame
        lost = next(k for k in t.keys if "seq 2" in " ".join(t.text_of(k)))
        t.move_cursor(row=t.keys.index(lost))
        await wait_for(pilot, lambda: detail.key == lost)
        head = str(detail.query_one("#detail-head").render())
        assert f"✗ seen on {NAT_LIGHT.tap}, virbr0; never on wan0" in head


async def test_dhcp_view_names_the_server_and_checks_the_lease() -> None:
    factory = nat_factory()
    async with make_app().run_test(size=(160, 40)) as pilot:
        screen = await open_capture(pilot, factory)
        await pilot.press("2")
        assert screen.view == "dhcp"
        view = screen.query_one(CaptureDhcp)
        await wait_for(pilot, lambda: view.current() is not None)
        tx = view.current()
        assert tx is not None
        await wait_for(pilot, lambda: "match" in view.row_text(tx)[-1])
        assert view.row_text(tx) == [
            "0x5eed0001", "nat-light", "Discover Offer Request Ack", NAT_IP, spec.NAT_GATEWAY,
            VIRBR0_MAC, "virbr0", f"libvirt's dnsmasq on virbr0 (network {spec.NAT_NET})",
            "✓ match",
        ]  # fmt: skip
        detail = str(view.query_one("#dhcp-detail").render())
        assert "its Offer arrived on virbr0" in detail
        assert f"lease check: libvirt's lease on network {spec.NAT_NET} agrees" in detail
        await pilot.press("1")
        assert screen.view == "packets"
        await pilot.press("tab")  # tab toggles the two views
        assert screen.view == "dhcp" and view.table.has_focus
        await pilot.press("tab")
        assert screen.view == "packets" and table_of(screen).has_focus


async def test_protocol_and_direction_filters() -> None:
    factory = nat_factory(split=12)
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_capture(pilot, factory)
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 12)
        pc = col(screen, "proto")
        await pilot.press("p")  # icmp
        assert screen.filters.proto == "icmp"
        assert {ln[pc].split(" seq")[0] for ln in texts(screen)} == {
            "ICMP echo-request", "ICMP echo-reply"}  # fmt: skip
        assert len(t.keys) == 5  # 3 requests, 2 replies
        await pilot.press("d")  # from the VM only
        assert screen.filters.direction == "out"
        assert len(t.keys) == 3 and all(ln[4] == "→" for ln in texts(screen))
        await pilot.press("d")  # to the VM only
        assert len(t.keys) == 2 and all(ln[4] == "←" for ln in texts(screen))
        await pilot.press("d", "p", "p", "p", "p")  # both ways; udp, tcp, arp, dhcp
        assert screen.filters.proto == "dhcp"
        assert [ln[pc] for ln in texts(screen)] == [
            "DHCP Discover", f"DHCP Offer {NAT_IP}", f"DHCP Request {NAT_IP}",
            f"DHCP Ack {NAT_IP}"]  # fmt: skip
        assert "proto dhcp" in str(screen.query_one("#capture-filters").render())
        await pilot.press("p")
        assert screen.filters.proto == "all" and len(t.keys) == 12


async def test_bad_bpf_is_refused_inline_and_the_capture_goes_on() -> None:
    factory = nat_factory()
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_capture(pilot, factory)
        await pilot.press("b")
        inp = screen.query_one("#capture-input")
        assert inp.has_focus
        for ch in "icmp and and":
            await pilot.press("space" if ch == " " else ch)
        await pilot.press("enter")
        err = str(screen.query_one("#capture-input-error").render())
        assert "bad filter 'icmp and and'" in err and "syntax error" in err
        assert "still capturing with the old filter" in err
        assert len(factory.sessions) == 1 and not factory.sessions[0].stopped.is_set()
        assert screen.filters.bpf == "" and screen.state == "capturing"
        # a good one: checked, then the session is restarted with it and the old one stopped
        inp.value = "icmp"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.filters.bpf == "icmp")
        assert [s.bpf for s in factory.sessions] == [None, "icmp"]
        await wait_for(pilot, factory.sessions[0].stopped.is_set)
        assert not screen.query_one("#capture-input-error").display
        assert "BPF icmp" in str(screen.query_one("#capture-filters").render())
        # Escape in the input cancels it, it does not close the screen ("/" opens it too)
        await pilot.press("slash")
        assert inp.has_focus
        await pilot.press("escape")
        assert pilot.app.screen is screen and table_of(screen).has_focus


async def test_pause_resume_clear() -> None:
    rows, _ = nat_capture()
    path = sample_path("nat-light")
    factory = Factory(lambda p, b: FakeSession(p, [batch(path, rows[:3])]))
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_capture(pilot, factory)
        s = factory.sessions[0]
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 3)
        await pilot.press("space")
        assert s.paused and screen.state == "paused"
        assert "paused" in str(screen.query_one("#capture-title").render())
        s.push(batch(path, rows[3:6]))
        await pilot.pause(0.2)
        assert len(t.keys) == 3  # nothing comes while paused
        await pilot.press("space")
        assert not s.paused
        await wait_for(pilot, lambda: len(t.keys) == 6)
        await pilot.press("c")
        assert s.cleared == 1 and t.keys == [] and list(screen.kept_rows()) == []
        s.push(batch(path, rows[6:7]))
        await wait_for(pilot, lambda: len(t.keys) == 1)
        assert t.keys == ["7"]  # numbering goes on, it is not reused after a clear


async def test_export_pcapng_is_read_back_by_tshark(tmp_path: Path) -> None:
    factory = nat_factory(split=12)
    target = tmp_path / "nat-light.pcapng"
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_capture(pilot, factory, export_default=str(target))
        await wait_for(pilot, lambda: len(table_of(screen).keys) == 12)
        await pilot.press("e")
        assert screen.query_one("#capture-input").value == str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(pilot, target.exists)
        await wait_for(pilot, lambda: "wrote" in screen.last_note)
        rows, _ = nat_capture()
        sightings = sum(len(r.hops) for r in rows)
        assert screen.last_note == f"wrote {sightings} packets (12 rows) to {target}"
    out = subprocess.run(
        ["tshark", "-r", str(target), "-T", "fields", "-e", "frame.interface_name", "-e", "ip.src"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [ln.split("\t") for ln in out.stdout.splitlines()]
    assert len(lines) == sightings
    assert {ln[0] for ln in lines} == {"vnet0", "virbr0", "wan0"}
    assert ["wan0", spec.UPLINK_IP] in lines  # the translated frame as seen on the uplink


async def test_tap_vanishes_then_comes_back_under_another_name() -> None:
    rows, _ = nat_capture()
    path = sample_path("nat-light")
    gone = hop_status(path, state={0: "gone"})
    gone = (replace(gone[0], message="vnet0 vanished; waiting for the VM's MAC to come back"),
            *gone[1:])  # fmt: skip
    back = hop_status(path, rename={0: "vnet7"})
    ev_gone = CaptureEvent(
        FROZEN_NOW,
        "hop-gone",
        "tap vnet0 vanished (VM shut down or NIC "
        "unplugged?); capture resumes when 52:54:00:aa:01:01 comes back",
        "vnet0",
    )
    ev_back = CaptureEvent(FROZEN_NOW + 5, "hop-back", "tap is back as vnet7 (was vnet0)", "vnet7")
    factory = Factory(lambda p, b: FakeSession(p, [batch(path, rows[:2])]))
    async with make_app().run_test(size=(120, 30)) as pilot:
        screen = await open_capture(pilot, factory)
        s = factory.sessions[0]
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 2)
        s.push(batch(path, events=[ev_gone], hops=gone))
        await wait_for(pilot, lambda: "vanished" in screen.last_note)
        note = screen.query_one("#capture-note")
        assert note.has_class("-warning") and "capture resumes when" in screen.last_note
        assert "✗ gone" in screen.query_one(CaptureHops).plain()
        s.push(batch(path, rows[2:4], events=[ev_back], hops=back))
        await wait_for(pilot, lambda: "is back as vnet7" in screen.last_note)
        assert [str(c.label) for c in t.columns.values()][1] == "vnet7"
        await wait_for(pilot, lambda: len(t.keys) == 4)


async def test_no_privileges_is_a_message_not_a_traceback() -> None:
    msg = "capturing needs root (or CAP_NET_RAW and CAP_NET_ADMIN): run kvmtui as root"
    factory = Factory(lambda p, b: FakeSession(p, fail=msg))
    async with make_app().run_test(size=(80, 24)) as pilot:
        screen = await open_capture(pilot, factory)
        assert screen.state == "failed"
        note = screen.query_one("#capture-note")
        assert str(note.render()) == msg and note.has_class("-error")
        assert screen.query_one("#capture-fallback").display  # the path is still shown
        await wait_for(pilot, lambda: len(screen.query(HopBox)) == 4)
        titles = [b.border_title for b in screen.query(HopBox)]
        assert titles == ["vnet0 (tap)", "virbr0 (bridge)", "NAT", "wan0 (uplink)"]
        await pilot.press("escape")
        assert pilot.app.screen is not screen


async def test_close_stops_the_session_and_help_explains_promisc() -> None:
    factory = nat_factory()
    async with make_app().run_test(size=(100, 30)) as pilot:
        screen = await open_capture(pilot, factory)
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, CaptureHelp)
        text = str(pilot.app.screen.query_one("#help-promisc").render())
        assert "promiscuous mode" in text and "returns to its previous mode" in text
        await pilot.press("escape")
        assert pilot.app.screen is screen
        await pilot.press("escape")
        assert pilot.app.screen is not screen
        await wait_for(pilot, factory.sessions[0].stopped.is_set)


async def test_app_c_key_without_a_live_host_says_so() -> None:
    """The app's own ``c`` binding over the fixed sample snapshot (no live host): no capture,
    a clear line, the path shown."""
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("4", "j", "j", "c")  # the VMs tab, nat-light, capture
        await wait_for(pilot, lambda: isinstance(app.screen, CaptureScreen))
        screen = app.screen
        assert isinstance(screen, CaptureScreen)
        await wait_for(pilot, lambda: screen.state == "unavailable")
        assert str(screen.query_one("#capture-note").render()) == NO_LIVE_SOURCE
        await pilot.press("1", "2", "3", "4")  # the app's pane keys do nothing harmful here
        assert app.screen is screen


# --- snapshots (frozen data) ------------------------------------------------------------------


def _snap_app(view: str) -> tuple[KvmApp, Callable[[Any], Any]]:
    app = make_app()
    factory = nat_factory(split=12)

    async def run_before(pilot: Any) -> None:
        screen = await open_capture(pilot, factory)
        t = table_of(screen)
        await wait_for(pilot, lambda: len(t.keys) == 12)
        detail = screen.query_one(CaptureDetail)
        key = next(k for k in t.keys if "echo-req" in " ".join(t.text_of(k)))
        t.follow = False
        t.move_cursor(row=t.keys.index(key))
        await wait_for(pilot, lambda: detail.key == key and detail.decoded_lines, timeout=20)
        if view == "dhcp":
            await pilot.press("2")
            v = screen.query_one(CaptureDhcp)
            await wait_for(pilot, lambda: v.current() is not None and "match" in v.row_text(
                v.current())[-1])  # type: ignore[arg-type]  # fmt: skip
        # focus lands on the view's table a refresh or so after it opens: wait for it, or the
        # cursor row's colour depends on timing
        focused = v.table if view == "dhcp" else t
        await wait_for(pilot, lambda: focused.has_focus)
        await pilot.pause(0.1)
        if view != "dhcp":
            # the cursor row is scrolled into view once the table has its final height, which
            # depends on timing at 80x24: start from the top so the picture is always the same
            t.scroll_to(y=0, animate=False, immediate=True)
            await pilot.pause(0.1)

    return app, run_before


def test_snapshot_capture(snap_compare: Any) -> None:
    app, run_before = _snap_app("packets")
    assert snap_compare(app, terminal_size=(120, 34), run_before=run_before)


def test_snapshot_capture_dhcp(snap_compare: Any) -> None:
    app, run_before = _snap_app("dhcp")
    assert snap_compare(app, terminal_size=(120, 34), run_before=run_before)


def test_snapshot_capture_80x24(snap_compare: Any) -> None:
    app, run_before = _snap_app("packets")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_capture_dhcp_80x24(snap_compare: Any) -> None:
    app, run_before = _snap_app("dhcp")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


# --- on the real lab --------------------------------------------------------------------------

PING_SIZE = 77  # an unusual size tells our pings from the ones the light VMs send by themselves
SCREENSHOTS = os.environ.get("KVMTUI_SCREENSHOTS")  # a folder: save the lab screens there


def lab_app(lab: Any) -> KvmApp:
    from kvmtui.core.live import LiveHost

    return KvmApp(
        LiveHost(uri=lab.uri, netns=lab.host_ns),
        keymap_path=Path("/nonexistent/kvmtui-keys.toml"),
    )


async def lab_capture(pilot: Any, mac: str) -> CaptureScreen:
    """Select the VM (found by its NIC's MAC: light VMs are named after their namespace) as
    the palette's "go to VM" does, and press ``c``."""
    app = pilot.app

    def vm_name() -> str | None:
        snap = app.snapshot
        if snap is None:
            return None
        return next((v.name for v in snap.vms for n in v.nics if n.mac == mac), None)

    await wait_for(pilot, vm_name, timeout=30)
    name = vm_name()
    app.go_to("vm", name)
    await pilot.pause(0.1)
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(app.screen, CaptureScreen))
    screen = app.screen
    assert isinstance(screen, CaptureScreen) and (screen.vm, screen.mac) == (name, mac)
    await wait_for(pilot, lambda: screen.state != "starting", timeout=30)
    assert screen.state == "capturing", screen.last_note
    return screen


def _ours(screen: CaptureScreen, src: str, dst: str) -> list[tuple[str, PacketRow]]:
    return [
        (k, r) for k, r in screen.shown_rows()
        if r.frame.proto == "icmp" and r.frame.icmp_type == 8 and r.frame.src_ip == src
        and r.frame.dst_ip == dst and r.frame.payload_len == PING_SIZE
    ]  # fmt: skip


def _save(app: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        app.save_screenshot(filename=name, path=SCREENSHOTS)


@pytest.mark.lab
async def test_lab_nat_vm_ping_lights_tap_virbr0_wan0_with_nat(lab: Any) -> None:
    vm = NAT_LIGHT
    ip = await asyncio.to_thread(lab.wait_ip, vm.name)
    app = lab_app(lab)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await lab_capture(pilot, vm.mac)
        t = table_of(screen)
        assert [ln.dev for ln in t.lanes] == [vm.tap, spec.NAT_BRIDGE, spec.UPLINK]
        cp = await asyncio.to_thread(
            lab.run, lab.vm_ns(vm.name), "busybox", "ping", "-c", "3", "-i", "0.3", "-W", "2",
            "-s", str(PING_SIZE), spec.INTERNET_IP,
        )  # fmt: skip
        assert "3 packets received" in cp.stdout, cp.stdout + cp.stderr
        await wait_for(pilot, lambda: len(_ours(screen, ip, spec.INTERNET_IP)) == 3, timeout=10)
        nat_col = col(screen, "NAT / stopped")
        for key, row in _ours(screen, ip, spec.INTERNET_IP):
            cells = t.text_of(key)
            lanes = cells[1:4]
            assert all(c.startswith("●") for c in lanes), cells  # seen on all three hops
            assert lanes[0] == "●+0"
            # the ICMP id is the "port" MASQUERADE may rewrite
            assert cells[nat_col].startswith(f"{ip}:{row.frame.icmp_id} → {spec.UPLINK_IP}:")
            assert cells[nat_col].endswith("✓ct"), cells  # conntrack agrees
        hops = screen.query_one(CaptureHops).hops
        assert [h.dev for h in hops] == [vm.tap, spec.NAT_BRIDGE, spec.UPLINK]
        assert {h.state for h in hops} == {"capturing"}
        assert hops[1].promisc and hops[0].received >= 3 and hops[2].received >= 3
        key, _ = _ours(screen, ip, spec.INTERNET_IP)[0]
        t.follow = False
        t.move_cursor(row=t.keys.index(key))
        detail = screen.query_one(CaptureDetail)
        await wait_for(pilot, lambda: detail.key == key and detail.decoded_lines, timeout=30)
        assert any("###[ ICMP ]###" in ln for ln in detail.decoded_lines)
        await pilot.pause(0.2)
        _save(app, "capture.svg")


@pytest.mark.lab
async def test_lab_host_only_packet_never_reaches_an_uplink(lab: Any) -> None:
    vm = ISO_A
    ip = await asyncio.to_thread(lab.wait_ip, vm.name)
    app = lab_app(lab)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await lab_capture(pilot, vm.mac)
        t = table_of(screen)
        assert [ln.dev for ln in t.lanes] == [vm.tap, spec.ISO_BRIDGE]  # no uplink to watch
        br = pilot.app.snapshot.bridge(spec.ISO_BRIDGE)
        # the host-only guest has no default route: frames to its gateway's MAC for the
        # outside, sent from its eth0 (nothing in the VM is changed)
        Ether, IP, ICMP, *_ = _frames()
        with in_netns(lab.vm_ns(vm.name)):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            sock.bind(("eth0", 0))
            for seq in range(2):
                pkt = Ether(src=vm.mac, dst=br.mac) / IP(src=ip, dst=spec.INTERNET_IP,
                      id=4100 + seq) / ICMP(id=4343, seq=seq) / (b"k" * PING_SIZE)  # fmt: skip
                sock.send(bytes(pkt))
        finally:
            sock.close()
        await wait_for(pilot, lambda: len(_ours(screen, ip, spec.INTERNET_IP)) == 2, timeout=10)
        for key, _row in _ours(screen, ip, spec.INTERNET_IP):
            cells = t.text_of(key)
            assert cells[1].startswith("●") and cells[2].startswith("●")
            note = cells[col(screen, "NAT / stopped")]
            # libvirt's rules for an isolated network reject what would leave it: with tracefs
            # the kernel's own word names the firewall, else the path model says there is no way
            dropped = f"✗ dropped at {spec.ISO_BRIDGE} by the firewall (nftables rule)"
            no_way = f"✗ ends at {spec.ISO_BRIDGE}: no way out"
            assert note == dropped or note.startswith(no_way), note


@pytest.mark.lab
async def test_lab_dhcp_view_names_libvirts_dnsmasq_and_checks_the_lease(lab: Any) -> None:
    vm = NAT_LIGHT
    await asyncio.to_thread(lab.wait_ip, vm.name)
    app = lab_app(lab)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await lab_capture(pilot, vm.mac)
        # one DHCP exchange without touching the VM's configuration (script /bin/true)
        cp = await asyncio.to_thread(
            lab.run, lab.vm_ns(vm.name), "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
            "-t", "8", "-T", "2", "-s", "/bin/true", timeout=60,
        )  # fmt: skip
        assert "obtained" in cp.stderr, cp.stderr
        await pilot.press("2")
        view = screen.query_one(CaptureDhcp)

        def bound() -> DhcpTransaction | None:
            tx = view.current()
            return tx if tx is not None and tx.acked else None

        await wait_for(pilot, lambda: bound() is not None, timeout=10)
        await wait_for(pilot, lambda: "checking" not in view.row_text(bound())[-1], timeout=15)  # type: ignore[arg-type]
        tx = bound()
        assert tx is not None
        cells = view.row_text(tx)
        assert cells[1] == screen.vm
        assert (cells[4], cells[6]) == (spec.NAT_GATEWAY, spec.NAT_BRIDGE)
        assert cells[7] == f"libvirt's dnsmasq on {spec.NAT_BRIDGE} (network {spec.NAT_NET})"
        assert cells[8] == "✓ match", str(view.query_one("#dhcp-detail").render())
        assert "Discover" in cells[2] and cells[2].endswith("Ack")
        await pilot.pause(0.2)
        _save(app, "capture-dhcp.svg")


NOT_ROOT_SCRIPT = """
import asyncio, sys
sys.path.insert(0, ROOT)
from textual.app import App
from kvmtui.capture.engine import CaptureSession
from kvmtui.core.model import Hop, NicPath
from kvmtui.ui.screens.capture import CaptureScreen

path = NicPath("vm", "52:54:00:aa:01:01", "bridge", (Hop("lo", "tap"),), False, "test")

async def main():
    app = App()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = CaptureScreen("vm", path.mac, path,
                               session_factory=lambda p, b: CaptureSession(p, bpf_filter=b))
        app.push_screen(screen)
        for _ in range(200):
            await pilot.pause(0.05)
            if screen.state != "starting":
                break
        print(screen.state)
        print(screen.last_note)

asyncio.run(main())
"""


def test_not_root_real_session_says_so_without_a_traceback() -> None:
    """A real CaptureSession as user nobody (privileges dropped with setpriv): the kernel
    refuses the AF_PACKET socket, the screen shows one line."""
    root = str(Path(__file__).resolve().parents[2])
    cp = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
         NOT_ROOT_SCRIPT.replace("ROOT", repr(root))],
        capture_output=True, text=True, timeout=120, cwd="/", stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    assert "Traceback" not in cp.stdout + cp.stderr
    state, note = cp.stdout.strip().splitlines()[-2:]
    assert state == "failed"
    assert note == "capturing needs root (or CAP_NET_RAW and CAP_NET_ADMIN): run kvmtui as root"


def test_model_counts_rows_that_leave_the_kept_history() -> None:
    """An export holds the kept rows only: the model counts the ones that fell out, so the
    screen can say the file is not the whole session (it said nothing before)."""
    from kvmtui.ui.capture_model import CaptureModel, Filters

    rows, _ = nat_capture()
    model = CaptureModel(keep=5)
    model.ingest(batch(sample_path("nat-light"), rows), Filters())
    assert len(model.all_rows()) == 5
    assert model.evicted == len(rows) - 5
    model.clear()
    assert model.evicted == 0
