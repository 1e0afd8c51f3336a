"""The capture's detail pane: the selected packet's hops, NAT, and its scapy dissection.

scapy is imported late (its import reads every interface of the namespace: seconds on a host
with many taps) and dissecting costs 80-150 us a packet, so only the selected packet is
dissected, in a thread worker; the pane says "decoding…" meanwhile. Results are cached by row.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

from textual import on, work
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.widgets import Static

from kvmtui.capture.correlate import PacketRow
from kvmtui.ui.widgets.capture_table import clock_text, offset_text

DECODING = "decoding… (scapy loads on first use)"


def row_header(row: PacketRow, num: str | None = None) -> list[str]:
    """What the correlation knows about the packet: hops with offsets, NAT, where it stopped."""
    f = row.frame
    way = "from the VM" if row.direction == "out" else "to the VM"
    label = num if num is not None else str(row.seq)
    lines = [f"[b]#{label}[/b] {escape(f.summary())}  ({way}, {clock_text(row.time_ns)})"]
    hops = []
    for s in row.hops:
        side = "sent by" if s.outgoing else "received on"
        us = (s.time_ns - row.time_ns) / 1000.0
        tag = f", {s.frame.vlan_label}" if s.frame.vlans != f.vlans else ""
        hops.append(f"{escape(s.dev)} ({s.role}, {side}{tag}) {offset_text(us)}")
    lines.append("hops: " + " → ".join(hops))
    n = row.nat
    if n is not None:
        ct = {True: "agrees", False: "does NOT agree", None: "not checked"}[n.conntrack]
        lines.append(f"NAT: {escape(n.from_)} → {escape(n.to)} (conntrack {ct})")
        if n.conntrack_detail:
            lines.append(f"     {escape(n.conntrack_detail)}")
    if row.stopped:
        lines.append(f"[$error]✗ {escape(row.stopped)}[/]")
    fate = getattr(row, "fate", None)
    if fate is not None:
        words = getattr(fate, "words", "") or f"dropped at {fate.hop}"
        lines.append(
            f"[$error]✗ {escape(words)}[/] (kernel: {escape(fate.reason)} in "
            f"{escape(fate.location)})"
        )
    if f.error:
        lines.append(f"[$warning]decode: {escape(f.error)}[/]")
    return lines


class DissectReady(Message):
    def __init__(self, key: str, lines: list[str]) -> None:
        super().__init__()
        self.key = key
        self.lines = lines


class CaptureDetail(VerticalScroll):
    """Shows one row; ``show_row`` is cheap (the dissection runs in a worker)."""

    DEFAULT_CSS = """
    CaptureDetail { height: 1fr; border: round $panel; padding: 0 1; }
    CaptureDetail:focus { border: heavy $accent; }
    CaptureDetail #detail-head { height: auto; }
    CaptureDetail #detail-body { height: auto; color: $text; }
    """
    CACHE: ClassVar[int] = 64

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.key: str | None = None
        self._cache: OrderedDict[str, list[str]] = OrderedDict()
        self.decoded_lines: list[str] = []
        self.fates_note = ""  # why drop reasons are not traced (no root, no tracefs), if so

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("No packet selected.", id="detail-head")
        yield Static("", id="detail-body", markup=False)

    def show_row(self, key: str | None, row: PacketRow | None) -> None:
        if key == self.key:
            return
        self.key = key
        head = self.query_one("#detail-head", Static)
        body = self.query_one("#detail-body", Static)
        if key is None or row is None:
            head.update("No packet selected.")
            body.update("")
            self.decoded_lines = []
            return
        lines = row_header(row, key)
        if row.stopped and row.fate is None and self.fates_note:
            lines.append(f"[$text-muted]{escape(self.fates_note)}[/]")
        head.update("\n".join(lines))
        cached = self._cache.get(key)
        if cached is not None:
            self._set_body(cached)
            return
        self.decoded_lines = []
        body.update(DECODING)
        data = row.hops[0].data if row.hops else b""
        # the frame as seen nearest the VM (before NAT)
        for s in row.hops:
            if s.frame is row.frame:
                data = s.data
                break
        self._dissect(key, data)

    @work(thread=True, exclusive=True, group="dissect", exit_on_error=False)
    def _dissect(self, key: str, data: bytes) -> None:
        from kvmtui.capture import dissect

        self.post_message(DissectReady(key, dissect.dissect(data)))

    @on(DissectReady)
    def _ready(self, message: DissectReady) -> None:
        self._cache[message.key] = message.lines
        while len(self._cache) > self.CACHE:
            self._cache.popitem(last=False)
        if message.key == self.key:
            self._set_body(message.lines)

    def _set_body(self, lines: list[str]) -> None:
        self.decoded_lines = lines
        self.query_one("#detail-body", Static).update("\n".join(lines))
