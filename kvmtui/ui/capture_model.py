"""What the capture screen works with, apart from its widgets: the session it drives, the
messages its thread workers post, its filters, and the helpers that open, stop and export.

The screen (``kvmtui/ui/screens/capture.py``) composes the panes and handles the messages;
nothing here touches a widget, so it can be read (and tested) without an app.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.message import Message

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.dhcp import DhcpTransaction, LeaseCheck
from kvmtui.capture.engine import CaptureBatch, CaptureEvent, HopStatus
from kvmtui.core.model import NicPath
from kvmtui.ui.widgets.capture_dhcp import tx_key

if TYPE_CHECKING:
    from kvmtui.doctor.fate import FateTracker
from kvmtui.ui.widgets.capture_table import DIRECTION_LABEL, matches

log = logging.getLogger(__name__)

POLL_S = 0.1
KEEP_ROWS = 10_000  # rows kept for re-filtering and export (the engine keeps its own too)
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


class Session(Protocol):
    """What the screen needs of ``kvmtui.capture.engine.CaptureSession``."""

    def start(self) -> Any: ...
    def poll(self) -> CaptureBatch: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def clear(self) -> None: ...
    def stop(self) -> None: ...


SessionFactory = Callable[[NicPath, str | None], Session]
LeaseChecker = Callable[[DhcpTransaction], LeaseCheck]


# --- messages (posted by thread workers, handled on the main thread) ---------------------------


class SessionStarted(Message):
    def __init__(self, gen: int, session: Session, bpf: str) -> None:
        super().__init__()
        self.gen, self.session, self.bpf = gen, session, bpf


class SessionFailed(Message):
    def __init__(self, gen: int, message: str, bpf_change: bool) -> None:
        super().__init__()
        self.gen, self.message, self.bpf_change = gen, message, bpf_change


class BatchReady(Message):
    def __init__(self, gen: int, batch: CaptureBatch) -> None:
        super().__init__()
        self.gen, self.batch = gen, batch


class ExportDone(Message):
    def __init__(self, path: str, packets: int, rows: int, error: str | None = None) -> None:
        super().__init__()
        self.path, self.packets, self.rows, self.error = path, packets, rows, error


class FatesNote(Message):
    """The drop tracer could not start (no root, no tracefs): one line, said once."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class LeaseChecked(Message):
    def __init__(self, key: str, check: LeaseCheck) -> None:
        super().__init__()
        self.key, self.check = key, check


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    from kvmtui.capture.bpf import BpfError
    from kvmtui.capture.ring import CaptureError

    if isinstance(exc, CaptureError | BpfError):
        return text or type(exc).__name__
    if isinstance(exc, PermissionError):
        return "capturing needs root (or CAP_NET_RAW and CAP_NET_ADMIN): run kvmtui as root"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def default_export_path(vm: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in vm)
    from kvmtui.capture.pcapng import export_dir

    try:
        folder = export_dir()
    except OSError:
        folder = os.path.join(os.path.expanduser("~"), ".local/share/kvmtui/captures")
    return os.path.join(folder, f"kvmtui-{safe}-{stamp}.pcapng")


def live_factory(app: Any) -> tuple[SessionFactory | None, str | None]:
    """A factory of real sessions in the app source's namespace, and its libvirt URI; (None,
    None) when the source is not a live host (it has no ``netns``)."""
    source = getattr(app, "source", None)
    if source is None or not hasattr(source, "netns"):
        return None, None
    netns = source.netns
    uri = getattr(source, "uri", None)
    snap = getattr(app, "snapshot", None)
    networks = tuple(snap.networks) if snap is not None else ()
    vm_by_mac = {n.mac: v.name for v in snap.vms for n in v.nics} if snap is not None else {}

    def make(path: NicPath, bpf_filter: str | None) -> Session:
        from kvmtui.capture.engine import CaptureSession

        return CaptureSession(
            path, netns=netns, bpf_filter=bpf_filter or None, networks=networks,
            vm_by_mac=vm_by_mac,
        )  # fmt: skip

    return make, uri


@dataclass(frozen=True, slots=True)
class Filters:
    proto: str = "all"
    direction: str = "both"
    bpf: str = ""

    def text(self, pending: str | None = None) -> str:
        bpf = escape(self.bpf) if self.bpf else "[$text-muted]none[/]"
        if pending is not None:
            bpf += f" [$warning](applying {escape(pending)}…)[/]"
        return (
            f"[b]p[/b] proto [b]{self.proto}[/b]  ·  [b]d[/b] {DIRECTION_LABEL[self.direction]}"
            f"  ·  [b]b[/b] BPF {bpf}"
        )


class Stoppable(Protocol):
    def stop(self) -> None: ...


def _stop_quietly(session: Stoppable) -> None:
    # closing sockets of a vanished device may fail: nothing the user can act on
    with contextlib.suppress(Exception):
        session.stop()


def _stop_in_thread(session: Stoppable) -> None:
    # not a daemon: the app waits for the sockets to close before the process exits
    threading.Thread(target=_stop_quietly, args=(session,), name="kvmtui-capture-stop").start()


def _libvirt_lease_checker(uri: str | None) -> LeaseChecker:
    def check(tx: DhcpTransaction) -> LeaseCheck:
        from kvmtui.capture.dhcp import check_lease

        return check_lease(tx, uri)

    return check


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


def start_fates(path: NicPath | None) -> FateTracker | None:
    """A started ``FateTracker`` on ``path`` (blocking: call it from a worker), or None when
    the tracer module is not in this build or the path has no devices. A tracker that could
    not trace keeps its one-line ``note`` and annotates nothing."""
    if path is None:
        return None
    try:
        from kvmtui.doctor.fate import FateTracker
    except ImportError:  # the drop tracer is optional: the view works without it
        return None
    try:
        return FateTracker(path).start()
    except Exception as exc:  # a tracer that fails must not take the capture with it
        log.warning("drop tracer did not start: %s", exc)
        return None


def annotate(fates: FateTracker | None, batch: CaptureBatch) -> CaptureBatch:
    """``batch`` with the kernel's fate on each row it dropped (worker thread)."""
    if fates is None or not batch.rows:
        return batch
    try:
        rows = fates.annotate(batch.rows)
    except Exception as exc:  # the tracer's trouble is not the capture's
        log.warning("drop tracer: %s", exc)
        return batch
    return dataclasses.replace(batch, rows=tuple(rows))
