"""The capture screen's table model: the rows and DHCP transactions it keeps, its filters,
its keys, and the words of its title and load line.

The screen (``kvmtui/ui/screens/capture.py``) composes the panes (``kvmtui/ui/widgets/capture_*``)
and handles the messages of its thread side (``kvmtui/ui/capture_runner.py``); nothing here
touches a widget or a thread, so it can be read (and tested) without an app.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass

from textual.binding import Binding, BindingType
from textual.markup import escape

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.dhcp import DhcpTransaction, LeaseCheck
from kvmtui.capture.engine import CaptureBatch, CaptureEvent, HopStatus
from kvmtui.core.model import NicPath
from kvmtui.ui.widgets.capture_dhcp import tx_key
from kvmtui.ui.widgets.capture_table import DIRECTION_LABEL, DIRECTIONS, PROTOS, matches

KEEP_ROWS = 10_000  # rows kept for re-filtering and export (the engine only buffers between polls)
COMPACT_BELOW = 140  # columns: narrower terminals get the compact packet list
NARROW_BELOW = 100  # columns: 80x24 over SSH gets the narrow one (src, dst, proto kept whole)
REFILTER_ROWS = 100  # a filter change re-lists the newest matching rows (fast under a flood)
BATCH_ROWS = 20  # at most this many new rows go to the table per batch (the newest): 200/s

NO_LIVE_SOURCE = (
    "Live capture needs a live host: this app reads a fixed snapshot, so there is nothing "
    "to capture. The NIC's path is shown below."
)

LANE_LEGEND = (
    "Lanes: one column per hop. ● seen there (+µs after the first hop), ✗ should have "
    "crossed it and never did, · had no reason to cross it. → from the VM, ← to the VM."
)


# the capture screen's keys (ids for users' keymaps)
CAPTURE_BINDINGS: tuple[BindingType, ...] = (
    Binding("escape,q", "close", "Back", id="capture.close"),
    Binding("space", "pause", "Pause", id="capture.pause"),
    Binding("c", "clear", "Clear", id="capture.clear"),
    Binding("p", "cycle_proto", "Proto", id="capture.proto"),
    Binding("d", "cycle_direction", "Dir", id="capture.direction"),
    Binding("b,slash", "bpf", "BPF", id="capture.bpf"),
    Binding("e", "export", "Export", id="capture.export"),
    Binding("1", "view('packets')", "Packets", show=False, id="capture.view.packets"),
    Binding("2", "view('dhcp')", "DHCP", id="capture.view.dhcp"),
    Binding("tab", "toggle_view", "Packets/DHCP", show=False, id="capture.view.toggle"),
    Binding("3,4,x", "nothing", show=False),  # the app's pane keys mean nothing here
    Binding("f1", "help", "Help", id="capture.help"),
)


def default_export_path(vm: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in vm)
    from kvmtui.capture.pcapng import export_dir

    try:
        folder = export_dir()
    except OSError:
        folder = os.path.join(os.path.expanduser("~"), ".local/share/kvmtui/captures")
    return os.path.join(folder, f"kvmtui-{safe}-{stamp}.pcapng")


def export_text(path: str, packets: int, rows: int, evicted: int, whole: bool = False) -> str:
    """What an export wrote: every frame of the session (the spool), or the kept rows' frames,
    and then, when the oldest rows had left the kept history, that too."""
    if whole:
        return f"wrote {packets} frames to {path}: every frame of this session, at every hop"
    text = f"wrote {packets} packets ({rows} rows) to {path}"
    if evicted:
        text += (
            f"; the {evicted} oldest rows had left the kept history "
            "(kvmtui trace --pcap writes a whole session)"
        )
    return text


def _after(choices: tuple[str, ...], current: str) -> str:
    return choices[(choices.index(current) + 1) % len(choices)]


@dataclass(frozen=True, slots=True)
class Filters:
    proto: str = "all"
    direction: str = "both"
    bpf: str = ""

    def next_proto(self) -> Filters:
        return Filters(_after(PROTOS, self.proto), self.direction, self.bpf)

    def next_direction(self) -> Filters:
        return Filters(self.proto, _after(DIRECTIONS, self.direction), self.bpf)

    def text(self, pending: str | None = None) -> str:
        bpf = escape(self.bpf) if self.bpf else "[$text-muted]none[/]"
        if pending is not None:
            bpf += f" [$warning](applying {escape(pending)}…)[/]"
        return (
            f"[b]p[/b] proto [b]{self.proto}[/b]  ·  [b]d[/b] {DIRECTION_LABEL[self.direction]}"
            f"  ·  [b]b[/b] BPF {bpf}"
        )


class CaptureModel:
    """The screen's rows and DHCP transactions, fed one batch at a time (main thread only).

    Rows get a key of their own (a running number: a BPF change starts a new session whose
    rows number from 1 again); ``ingest`` returns the rows the table should add (the newest
    ``BATCH_ROWS`` matching the filters) and counts the rest as not shown."""

    def __init__(self, keep: int = KEEP_ROWS) -> None:
        self._next = 0
        self.rows: deque[tuple[str, PacketRow]] = deque(maxlen=keep)
        self.tx: dict[str, DhcpTransaction] = {}
        self.lease: dict[str, LeaseCheck] = {}
        self.lease_asked: set[str] = set()
        self.packets = 0
        self.skipped = 0
        self.lost_rows = 0
        self.not_shown = 0
        self.batches = 0
        self.evicted = 0  # rows that fell out of the kept history (an export lacks them)

    def ingest(self, batch: CaptureBatch, filters: Filters) -> list[tuple[str, PacketRow]]:
        self.batches += 1
        self.packets, self.skipped, self.lost_rows = batch.packets, batch.skipped, batch.lost_rows
        new: list[tuple[str, PacketRow]] = []
        for row in batch.rows:
            self._next += 1
            item = (str(self._next), row)
            if len(self.rows) == self.rows.maxlen:
                self.evicted += 1
            self.rows.append(item)
            if matches(row, filters.proto, filters.direction):
                new.append(item)
        if len(new) > BATCH_ROWS:
            self.not_shown += len(new) - BATCH_ROWS
            new = new[-BATCH_ROWS:]
        for tx in batch.dhcp:
            self.tx[tx_key(tx)] = tx
        return new

    def to_check(self, txs: tuple[DhcpTransaction, ...]) -> list[tuple[str, DhcpTransaction]]:
        """Acked transactions whose lease nobody asked libvirt about yet (asked once each)."""
        out = []
        for tx in txs:
            key = tx_key(tx)
            if tx.acked and key not in self.lease_asked:
                self.lease_asked.add(key)
                out.append((key, tx))
        return out

    def matching(self, filters: Filters, limit: int) -> list[tuple[str, PacketRow]]:
        rows = [it for it in self.rows if matches(it[1], filters.proto, filters.direction)]
        return rows[-limit:] if limit else []

    def clear(self) -> None:
        self.rows.clear()
        self.tx.clear()
        self.not_shown = 0
        self.evicted = 0

    def all_rows(self) -> list[PacketRow]:
        return [r for _, r in self.rows]


TITLE_STATE = {
    "starting": "starting…",
    "capturing": "● capturing",
    "paused": "⏸ paused",
    "failed": "✗ not capturing",
    "unavailable": "✗ not capturing",
}


def title_text(vm: str, mac: str, path: NicPath | None, state: str, packets: int) -> str:
    mode = path.mode if path is not None else "?"
    counts = f" · {packets} frames" if packets else ""
    shown = TITLE_STATE.get(state, state)
    return f"Capture · {escape(vm)} {escape(mac)} · {escape(str(mode))} · {shown}{counts}"


EVENT_LEVEL = {"hop-gone": "warning", "hop-down": "warning", "error": "error"}


def event_note(ev: CaptureEvent) -> tuple[str, str]:
    """An engine event as the screen's note line and its level."""
    stamp = time.strftime("%H:%M:%S", time.localtime(ev.time))
    return f"{stamp} {ev.message}", EVENT_LEVEL.get(ev.kind, "ok")


def load_text(model: CaptureModel, hops: tuple[HopStatus, ...], events: list[CaptureEvent]) -> str:
    """Under load, how much the table passed over (the engine's and ours); a hop gone or
    down, unless its own event line (which says more) was the last word about it."""
    gone = [h for h in hops if h.state in ("gone", "down")]
    if gone:
        devs = {h.dev for h in gone}
        last = next((e for e in reversed(events) if e.dev in devs), None)
        if last is not None and last.kind in ("hop-gone", "hop-down"):
            return ""
        return "; ".join(h.message or f"{h.dev} {h.state}" for h in gone)
    parts = []
    if model.skipped:
        parts.append(f"{model.skipped:,} frames not correlated (flood backlog or paused)")
    if model.lost_rows or model.not_shown:
        parts.append(f"{model.lost_rows + model.not_shown:,} rows not listed (newest shown)")
    return "; ".join(parts)
