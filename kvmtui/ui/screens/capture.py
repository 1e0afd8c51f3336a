"""Live capture of one VM NIC: its packets crossing tap, bridge, NAT and uplink.

Data flow (house style, "producers with backpressure"): the engine's ``CaptureSession`` reads
kernel-filtered sockets in its own thread into bounded buffers. This screen runs one thread
worker that calls ``session.poll()`` every ~100 ms and posts one :class:`BatchReady` per poll,
never a message per packet; the next poll waits until the UI has handled the previous batch,
so a slow UI makes batches bigger, not the queue longer. Rows are added to the table by key,
the cursor stays put, and the table holds a bounded number of rows.

Everything that blocks (opening the session: a netlink dump and one socket per hop; changing
the BPF filter: a new session; stopping it; libvirt's lease check; writing pcapng; scapy)
runs in a thread worker. A bad BPF expression is refused before any socket is touched, with
libpcap's message under the input, and the capture goes on with the old filter.

The session runs in the namespace of the app's source (``LiveHost(netns=...)``): the lab's
host namespace in the lab tests, the current namespace in the real product. A source that is
not a live host (a fixed snapshot) cannot be captured: the screen says so and shows the path.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.dhcp import DhcpTransaction, LeaseCheck
from kvmtui.capture.engine import PROMISC_EXPLANATION, CaptureBatch, CaptureEvent, HopStatus
from kvmtui.core.model import NicPath
from kvmtui.ui.screens.help import HelpModal
from kvmtui.ui.widgets.capture_detail import CaptureDetail
from kvmtui.ui.widgets.capture_dhcp import CaptureDhcp, tx_key
from kvmtui.ui.widgets.capture_hops import CaptureHops, promisc_note
from kvmtui.ui.widgets.capture_table import (
    DIRECTION_LABEL,
    DIRECTIONS,
    MAX_ROWS,
    PROTOS,
    CapturePacketTable,
    Lane,
    matches,
)
from kvmtui.ui.widgets.path_view import PathView

POLL_S = 0.1
KEEP_ROWS = 10_000  # rows kept for re-filtering and export (the engine keeps its own too)
COMPACT_BELOW = 140  # columns: narrower terminals get the compact packet list
REFILTER_ROWS = 100  # a filter change re-lists the newest matching rows (fast under a flood)
BATCH_ROWS = 20  # at most this many new rows go to the table per batch (the newest): 200/s

NO_LIVE_SOURCE = (
    "Live capture needs a live host: this app reads a fixed snapshot, so there is nothing "
    "to capture. The NIC's path is shown below."
)
NOT_YET = NO_LIVE_SOURCE  # the name the placeholder screen exported (kept for its callers)

LANE_LEGEND = (
    "Lanes: one column per hop. ● seen there (+µs after the first hop), ✗ should have "
    "crossed it and never did, · had no reason to cross it. → from the VM, ← to the VM."
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
    return f"/tmp/kvmtui-{safe}-{stamp}.pcapng"


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


class CaptureInput(Input):
    """The BPF / export path input: Enter applies, Escape cancels (not the screen's Back)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="capture.input.cancel"),
    ]

    class Cancelled(Message):
        pass

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class CaptureHelp(HelpModal):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss", "Close", id="capture.help.close"),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Help: live capture   (Esc closes)", id="help-title")
            with VerticalScroll():
                yield Static("Keys", classes="help-section")
                yield Static(
                    "\n".join(f"[b]{escape(k):>12}[/b]  {escape(d)}" for k, d in self._keys)
                )
                yield Static("Reading the packet list", classes="help-section")
                yield Static(escape(LANE_LEGEND))
                yield Static("Why the bridge is promiscuous", classes="help-section")
                yield Static(escape(PROMISC_EXPLANATION), id="help-promisc")


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


class CaptureScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
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
    ]
    DEFAULT_CSS = """
    CaptureScreen { layout: vertical; }
    CaptureScreen #capture-title { height: 1; padding: 0 1; background: $primary;
                                   color: $text; text-style: bold; }
    CaptureScreen #capture-promisc { height: auto; padding: 0 1; color: $text-muted; }
    CaptureScreen #capture-filters { height: 1; padding: 0 1; }
    CaptureScreen #capture-input { display: none; }
    CaptureScreen #capture-input.-shown { display: block; }
    CaptureScreen #capture-input-error { display: none; padding: 0 1; color: $error; height: auto; }
    CaptureScreen #capture-input-error.-shown { display: block; }
    CaptureScreen ContentSwitcher { height: 1fr; }
    CaptureScreen #packets { height: 1fr; }
    CaptureScreen CapturePacketTable { height: 1fr; border: round $panel; }
    CaptureScreen CapturePacketTable:focus { border: heavy $accent; }
    CaptureScreen CaptureDetail { height: 35%; min-height: 5; }
    CaptureScreen #capture-note { height: auto; max-height: 3; padding: 0 1; }
    CaptureScreen #capture-note.-warning { color: $warning; }
    CaptureScreen #capture-note.-error { color: $error; text-style: bold; }
    CaptureScreen #capture-note.-ok { color: $success; }
    CaptureScreen #capture-fallback { display: none; height: 1fr; }
    CaptureScreen.-unavailable #capture-fallback { display: block; }
    CaptureScreen.-unavailable ContentSwitcher { display: none; }
    CaptureScreen.-unavailable #capture-filters { display: none; }
    """

    def __init__(
        self,
        vm: str,
        mac: str,
        path: NicPath | None,
        *,
        session_factory: SessionFactory | None = None,
        lease_checker: LeaseChecker | None = None,
        poll_s: float = POLL_S,
        export_default: str | None = None,
        max_rows: int = MAX_ROWS,
    ) -> None:
        super().__init__()
        self.vm = vm
        self.mac = mac
        self.path = path
        self.poll_s = poll_s
        self.max_rows = max_rows
        self._factory = session_factory
        self._lease_checker = lease_checker
        self._export_default = export_default
        self._session: Session | None = None
        self._gen = 0  # the session generation whose batches count
        self._stopping = threading.Event()
        self._handled = threading.Event()  # the last batch was handled: the next may come
        self._handled.set()
        self.filters = Filters()
        self.pending_bpf: str | None = None
        self.paused = False
        self.state = "starting"  # starting, capturing, paused, failed, unavailable
        self._input_mode: str | None = None  # "bpf" or "export"
        self._next = 0
        self._all: deque[tuple[str, PacketRow]] = deque(maxlen=KEEP_ROWS)
        self._tx: dict[str, DhcpTransaction] = {}
        self._lease: dict[str, LeaseCheck] = {}
        self._lease_asked: set[str] = set()
        self.hops: tuple[HopStatus, ...] = ()
        self.events: list[CaptureEvent] = []
        self.packets = 0
        self.skipped = 0
        self.lost_rows = 0
        self.not_shown = 0
        self.batches = 0
        self.last_note = ""
        self._polling = False
        self.batch_ms: deque[float] = deque(maxlen=1000)  # UI time per batch (the bench reads it)
        self._title_text = ""
        self._note_level = ""

    # --- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="capture-title")
        yield CaptureHops(self.path, id="capture-hops")
        yield Static("", id="capture-promisc")
        yield Static(self.filters.text(), id="capture-filters")
        yield CaptureInput(id="capture-input")
        yield Static("", id="capture-input-error")
        with ContentSwitcher(initial="packets"):
            with Vertical(id="packets"):
                yield CapturePacketTable(max_rows=self.max_rows, id="capture-table")
                yield CaptureDetail(id="capture-detail")
            yield CaptureDhcp(id="dhcp")
        with Vertical(id="capture-fallback"):
            yield PathView(id="capture-path")
        yield Static("starting the capture…", id="capture-note")
        yield Footer()

    def _title(self) -> str:
        mode = self.path.mode if self.path is not None else "?"
        state = {
            "starting": "starting…",
            "capturing": "● capturing",
            "paused": "⏸ paused",
            "failed": "✗ not capturing",
            "unavailable": "✗ not capturing",
        }.get(self.state, self.state)
        counts = f" · {self.packets} frames" if self.packets else ""
        who = f"{escape(self.vm)} {escape(self.mac)}"
        return f"Capture · {who} · {escape(str(mode))} · {state}{counts}"

    def _show_title(self) -> None:
        title = self._title()
        if title != self._title_text:
            self._title_text = title
            self.query_one("#capture-title", Static).update(title)

    def on_mount(self) -> None:
        table = self.query_one(CapturePacketTable)
        lanes = []
        if self.path is not None:
            from kvmtui.capture.engine import capture_hops

            lanes = [Lane(i, str(h.dev), h.role) for i, h in capture_hops(self.path)]
        table.set_lanes(lanes, compact=self.app.size.width < COMPACT_BELOW)
        hops = tuple(HopStatus(ln.index, ln.dev, ln.role, "starting") for ln in lanes)
        self.query_one(CaptureHops).show(hops)
        table.focus()
        if self._factory is None:
            factory, uri = live_factory(self.app)
            self._factory = factory
            if self._lease_checker is None and factory is not None:
                self._lease_checker = _libvirt_lease_checker(uri)
        if self._factory is None:
            self._unavailable(NO_LIVE_SOURCE, "warning")
            return
        if self.path is None:
            self._unavailable("No path is known for this NIC: nothing to capture.", "error")
            return
        self._gen += 1
        self._open_session(self._gen, self.filters.bpf, False)

    def _unavailable(self, message: str, level: str) -> None:
        self.state = "unavailable"
        self.add_class("-unavailable")
        self._note(message, level)
        self._show_title()
        self._show_path()

    def _show_path(self) -> None:
        """The NIC's path with its evidence, when there is no capture to show."""
        view = self.query_one(PathView)
        # PathView.show_path has been a coroutine and a plain method (it runs its own worker)
        drawing = getattr(view, "show_path")(  # noqa: B009
            self.path, empty="No path known for this NIC (the host model has none)."
        )
        if inspect.isawaitable(drawing):
            self.run_worker(drawing, exit_on_error=False)

    def _note(self, text: str, level: str = "") -> None:
        if (text, level) == (self.last_note, self._note_level):
            return
        self.last_note, self._note_level = text, level
        note = self.query_one("#capture-note", Static)
        note.remove_class("-warning", "-error", "-ok")
        if level:
            note.add_class(f"-{level}")
        note.update(escape(text))

    # --- workers ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="capture-open", exit_on_error=False)
    def _open_session(self, gen: int, bpf: str, bpf_change: bool) -> None:
        assert self._factory is not None
        if not bpf_change:
            from kvmtui.capture import dissect

            dissect.preload()  # scapy in the background now: the first detail view is quick
        try:
            assert self.path is not None
            session = self._factory(self.path, bpf or None)
            session.start()
        except Exception as exc:
            self.post_message(SessionFailed(gen, one_line(exc), bpf_change))
            return
        if self._stopping.is_set():
            _stop_quietly(session)
            return
        self.post_message(SessionStarted(gen, session, bpf))

    @work(thread=True, exclusive=True, group="capture-poll", exit_on_error=False)
    def _poll_loop(self) -> None:
        worker = get_current_worker()
        while not self._stopping.wait(self.poll_s):
            if worker.is_cancelled:
                return
            # backpressure: one batch in flight; the engine buffers meanwhile (bounded)
            if not self._handled.wait(0.5):
                continue
            session, gen = self._session, self._gen
            if session is None:
                continue
            try:
                batch = session.poll()
            except Exception as exc:
                self.post_message(
                    SessionFailed(gen, f"capture poll failed: {one_line(exc)}", False)
                )
                return
            self._handled.clear()
            self.post_message(BatchReady(gen, batch))

    @work(thread=True, group="capture-lease", exit_on_error=False)
    def _check_lease(self, key: str, tx: DhcpTransaction) -> None:
        checker = self._lease_checker
        if checker is None:
            return
        try:
            result = checker(tx)
        except Exception as exc:
            result = LeaseCheck("unchecked", one_line(exc))
        self.post_message(LeaseChecked(key, result))

    @work(thread=True, exclusive=True, group="capture-export", exit_on_error=False)
    def _export(self, path: str, rows: list[PacketRow]) -> None:
        from kvmtui.capture.pcapng import write_rows

        try:
            target = Path(path).expanduser()
            n = write_rows(str(target), rows)
        except Exception as exc:
            self.post_message(ExportDone(path, 0, len(rows), one_line(exc)))
            return
        self.post_message(ExportDone(str(target), n, len(rows)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and not self._stopping.is_set():
            exc = event.worker.error
            self._note(f"{event.worker.group}: {one_line(exc) if exc else 'failed'}", "error")

    # --- handlers -----------------------------------------------------------------------------

    @on(SessionStarted)
    def _started(self, message: SessionStarted) -> None:
        if message.gen != self._gen or self._stopping.is_set():
            _stop_in_thread(message.session)
            return
        old, self._session = self._session, message.session
        if old is not None:
            _stop_in_thread(old)
        changed = self.pending_bpf is not None
        self.filters = Filters(self.filters.proto, self.filters.direction, message.bpf)
        self.pending_bpf = None
        self._show_filters()
        if self.paused:
            message.session.pause()
        self.state = "paused" if self.paused else "capturing"
        self._show_title()
        if changed:
            shown = message.bpf or "none"
            self._note(f"BPF filter now {shown}: the capture restarted on every hop with it", "ok")
        else:
            self._note(f"capturing {self.vm} on every hop of its path; F1 explains the lanes", "ok")
        self._handled.set()
        if not self._polling:
            self._polling = True
            self._poll_loop()

    @on(SessionFailed)
    def _failed(self, message: SessionFailed) -> None:
        if message.bpf_change:
            # the capture goes on with the old filter
            self.pending_bpf = None
            self._show_filters()
            self._show_input_error(f"{message.message} (still capturing with the old filter)")
            return
        if message.gen != self._gen:
            return
        self._session = None
        self.state = "failed"
        self.add_class("-unavailable")
        self._show_title()
        self._note(message.message, "error")
        self._show_path()

    @on(BatchReady)
    def _batch(self, message: BatchReady) -> None:
        try:
            if message.gen == self._gen and not self._stopping.is_set():
                self.apply_batch(message.batch)
        finally:
            self._handled.set()

    def apply_batch(self, batch: CaptureBatch) -> None:
        t0 = time.perf_counter()
        try:
            self._apply_batch(batch)
        finally:
            self.batch_ms.append((time.perf_counter() - t0) * 1000)

    def _apply_batch(self, batch: CaptureBatch) -> None:
        self.batches += 1
        self.packets, self.skipped, self.lost_rows = batch.packets, batch.skipped, batch.lost_rows
        self._show_hops(batch.hops)
        new: list[tuple[str, PacketRow]] = []
        for row in batch.rows:
            self._next += 1
            item = (str(self._next), row)
            self._all.append(item)
            if matches(row, self.filters.proto, self.filters.direction):
                new.append(item)
        if len(new) > BATCH_ROWS:
            self.not_shown += len(new) - BATCH_ROWS
            new = new[-BATCH_ROWS:]
        if new:
            self.query_one(CapturePacketTable).add_packets(new)
        if batch.dhcp:
            for tx in batch.dhcp:
                key = tx_key(tx)
                self._tx[key] = tx
                if tx.acked and key not in self._lease_asked and self._lease_checker:
                    self._lease_asked.add(key)
                    self._check_lease(key, tx)
            self.query_one(CaptureDhcp).show_transactions(batch.dhcp, self._lease)
        for ev in batch.events:
            self.events.append(ev)
            level = {"hop-gone": "warning", "hop-down": "warning", "error": "error"}.get(
                ev.kind, "ok"
            )
            self._note(f"{time.strftime('%H:%M:%S', time.localtime(ev.time))} {ev.message}", level)
        if not batch.events:
            self._load_note()
        if not batch.running and self.state == "capturing":
            self.state = "failed"
            err = next((e.message for e in batch.events if e.kind == "error"), "")
            self._note(err or "the capture stopped", "error")
        self._show_title()

    def _load_note(self) -> None:
        """Under load: say how much the table passed over (the engine's and ours)."""
        parts = []
        if self.skipped:
            parts.append(f"{self.skipped:,} frames not correlated (flood backlog or paused)")
        if self.lost_rows or self.not_shown:
            parts.append(f"{self.lost_rows + self.not_shown:,} rows not listed (newest shown)")
        gone = [h for h in self.hops if h.state in ("gone", "down")]
        if gone:
            # the event's own line says most ("... vanished (VM shut down?); resumes when ...")
            last = next((e for e in reversed(self.events) if e.dev in {h.dev for h in gone}), None)
            if last is None or last.kind not in ("hop-gone", "hop-down"):
                msg = "; ".join(h.message or f"{h.dev} {h.state}" for h in gone)
                self._note(msg, "warning")
        elif parts and self.last_note != "; ".join(parts):
            self._note("; ".join(parts), "warning")

    def _show_hops(self, hops: tuple[HopStatus, ...]) -> None:
        if hops == self.hops:
            return
        table = self.query_one(CapturePacketTable)
        for h in hops:
            lane = next((ln for ln in table.lanes if ln.index == h.index), None)
            if lane is not None and lane.dev != h.dev:
                table.rename_lane(h.index, h.dev)
        self.hops = hops
        self.query_one(CaptureHops).show(hops)
        note = promisc_note(hops)
        self.query_one("#capture-promisc", Static).update(
            escape(note) + " · F1: why" if note else ""
        )

    @on(LeaseChecked)
    def _lease_checked(self, message: LeaseChecked) -> None:
        self._lease[message.key] = message.check
        tx = self._tx.get(message.key)
        if tx is not None:
            self.query_one(CaptureDhcp).show_transactions([tx], self._lease)

    @on(ExportDone)
    def _exported(self, message: ExportDone) -> None:
        if message.error:
            self.notify(f"export failed: {message.error}", severity="error", timeout=8)
            self._note(f"export to {message.path} failed: {message.error}", "error")
            return
        text = f"wrote {message.packets} packets ({message.rows} rows) to {message.path}"
        self.notify(text, timeout=6)
        self._note(text, "ok")

    @on(DataTable.RowHighlighted, "#capture-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one(CapturePacketTable)
        key = str(event.row_key.value) if event.row_key.value is not None else None
        self.query_one(CaptureDetail).show_row(key, table.packet(key) if key else None)

    # --- actions ------------------------------------------------------------------------------

    def action_nothing(self) -> None:
        pass

    def action_pause(self) -> None:
        if self._session is None:
            return
        self.paused = not self.paused
        if self.paused:
            self._session.pause()
            self.state = "paused"
            self._note("paused: the kernel still counts, nothing is correlated (space resumes)")
        else:
            self._session.resume()
            self.state = "capturing"
            self._note("resumed", "ok")
        self._show_title()

    def action_clear(self) -> None:
        if self._session is not None:
            self._session.clear()
        self._all.clear()
        self._tx.clear()
        self.not_shown = 0
        self.query_one(CapturePacketTable).clear_packets()
        self.query_one(CaptureDetail).show_row(None, None)
        self.query_one(CaptureDhcp).clear_transactions()
        self._note("cleared")

    def on_resize(self) -> None:
        table = self.query_one(CapturePacketTable)
        if table.set_lanes(table.lanes, compact=self.size.width < COMPACT_BELOW):
            self._refilter()

    def _refilter(self) -> None:
        table = self.query_one(CapturePacketTable)
        table.clear_packets()
        rows = [
            it for it in self._all if matches(it[1], self.filters.proto, self.filters.direction)
        ]
        table.add_packets(rows[-min(self.max_rows, REFILTER_ROWS) :])
        if not rows:
            self.query_one(CaptureDetail).show_row(None, None)
        self._show_filters()

    def action_cycle_proto(self) -> None:
        i = PROTOS.index(self.filters.proto)
        self.filters = Filters(
            PROTOS[(i + 1) % len(PROTOS)], self.filters.direction, self.filters.bpf
        )
        self._refilter()

    def action_cycle_direction(self) -> None:
        i = DIRECTIONS.index(self.filters.direction)
        self.filters = Filters(
            self.filters.proto, DIRECTIONS[(i + 1) % len(DIRECTIONS)], self.filters.bpf
        )
        self._refilter()

    def _show_filters(self) -> None:
        self.query_one("#capture-filters", Static).update(self.filters.text(self.pending_bpf))

    def action_view(self, view: str) -> None:
        self.query_one(ContentSwitcher).current = view
        target = (
            self.query_one(CapturePacketTable)
            if view == "packets"
            else self.query_one(CaptureDhcp).table
        )
        target.focus()

    def action_toggle_view(self) -> None:
        cur = self.query_one(ContentSwitcher).current
        self.action_view("dhcp" if cur == "packets" else "packets")

    @property
    def view(self) -> str:
        return str(self.query_one(ContentSwitcher).current)

    def _open_input(self, mode: str, value: str, placeholder: str) -> None:
        self._input_mode = mode
        inp = self.query_one(CaptureInput)
        inp.value = value
        inp.placeholder = placeholder
        inp.border_title = (
            "BPF filter (Enter applies, Esc cancels)"
            if mode == "bpf"
            else ("export pcapng to (Enter writes, Esc cancels)")
        )
        inp.add_class("-shown")
        inp.cursor_position = len(value)
        self._show_input_error(None)
        inp.focus()

    def _close_input(self) -> None:
        self._input_mode = None
        self.query_one(CaptureInput).remove_class("-shown")
        self.query_one(CapturePacketTable).focus()

    def _show_input_error(self, text: str | None) -> None:
        err = self.query_one("#capture-input-error", Static)
        if text:
            err.update("✗ " + escape(text))
            err.add_class("-shown")
        else:
            err.update("")
            err.remove_class("-shown")

    def action_bpf(self) -> None:
        if self.state in ("unavailable", "failed"):
            return
        self._open_input("bpf", self.filters.bpf, "e.g. icmp or udp port 53 (empty: none)")

    def action_export(self) -> None:
        default = self._export_default or default_export_path(self.vm)
        self._open_input("export", default, "a path for the .pcapng file")

    @on(CaptureInput.Cancelled)
    def _input_cancelled(self) -> None:
        self._show_input_error(None)
        self._close_input()

    @on(Input.Submitted, "#capture-input")
    def _input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self._input_mode == "export":
            self._close_input()
            rows = [r for _, r in self._all]
            if not value:
                return
            self._export(value, rows)
            return
        if self._input_mode == "bpf":
            self.apply_bpf(value)

    def apply_bpf(self, expr: str) -> bool:
        """Check ``expr`` (libpcap) before use; on success restart the session with it."""
        from kvmtui.capture.bpf import check_filter

        err = check_filter(expr) if expr else None
        if err is not None:
            self._show_input_error(f"{err} (still capturing with the old filter)")
            return False
        self._close_input()
        self._show_input_error(None)
        if expr == self.filters.bpf:
            return True
        self.pending_bpf = expr
        self._show_filters()
        self._gen += 1
        self._open_session(self._gen, expr, True)
        return True

    def action_help(self) -> None:
        keys: list[tuple[str, str]] = []
        seen: set[str] = set()
        for active in self.active_bindings.values():
            b = active.binding
            if not b.description or b.system or b.action in seen:
                continue
            seen.add(b.action)
            keys.append((self.app.get_key_display(b), b.description))
        keys += [("j/k, ↑/↓", "move in the list"), ("G", "last row, follow new packets")]
        self.app.push_screen(CaptureHelp(keys))

    def action_close(self) -> None:
        self._shutdown()
        self.app.pop_screen()

    def on_unmount(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        """Stop the session (its sockets close: the bridge's promiscuity goes with them)."""
        self._stopping.set()
        self._handled.set()
        session, self._session = self._session, None
        if session is not None:
            _stop_in_thread(session)

    # --- for tests and the bench --------------------------------------------------------------

    def shown_rows(self) -> list[tuple[str, PacketRow]]:
        table = self.query_one(CapturePacketTable)
        return [(k, r) for k in table.keys if (r := table.packet(k)) is not None]

    def kept_rows(self) -> Iterable[PacketRow]:
        return [r for _, r in self._all]


def _stop_quietly(session: Session) -> None:
    # closing sockets of a vanished device may fail: nothing the user can act on
    with contextlib.suppress(Exception):
        session.stop()


def _stop_in_thread(session: Session) -> None:
    # not a daemon: the app waits for the sockets to close before the process exits
    threading.Thread(target=_stop_quietly, args=(session,), name="kvmtui-capture-stop").start()


def _libvirt_lease_checker(uri: str | None) -> LeaseChecker:
    def check(tx: DhcpTransaction) -> LeaseCheck:
        from kvmtui.capture.dhcp import check_lease

        return check_lease(tx, uri)

    return check
