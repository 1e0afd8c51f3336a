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

import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.dhcp import DhcpTransaction, LeaseCheck
from kvmtui.capture.engine import CaptureBatch, CaptureEvent, HopStatus
from kvmtui.core.model import NicPath
from kvmtui.ui.capture_model import (
    CAPTURE_BINDINGS,
    COMPACT_BELOW,
    NARROW_BELOW,
    NO_LIVE_SOURCE,
    POLL_S,
    REFILTER_ROWS,
    BatchReady,
    CaptureModel,
    ExportDone,
    FatesNote,
    Filters,
    LeaseChecked,
    LeaseChecker,
    Session,
    SessionFactory,
    SessionFailed,
    SessionStarted,
    _libvirt_lease_checker,
    _stop_in_thread,
    _stop_quietly,
    annotate,
    default_export_path,
    live_factory,
    load_text,
    one_line,
    start_fates,
    title_text,
)
from kvmtui.ui.widgets.capture_detail import CaptureDetail
from kvmtui.ui.widgets.capture_dhcp import CaptureDhcp
from kvmtui.ui.widgets.capture_hops import CaptureHops, promisc_note
from kvmtui.ui.widgets.capture_input import (
    CAPTURE_CSS,
    CaptureHelp,
    CaptureInput,
    CaptureInputBar,
    help_keys,
)
from kvmtui.ui.widgets.capture_table import (
    DIRECTIONS,
    MAX_ROWS,
    PROTOS,
    CapturePacketTable,
    Lane,
)
from kvmtui.ui.widgets.path_view import PathView

if TYPE_CHECKING:
    from kvmtui.doctor.fate import FateTracker

__all__ = ["NO_LIVE_SOURCE", "CaptureHelp", "CaptureScreen", "live_factory"]


class CaptureScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = list(CAPTURE_BINDINGS)
    DEFAULT_CSS = CAPTURE_CSS

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
        self.model = CaptureModel()
        self._fates: FateTracker | None = None  # kvmtui.doctor.fate, once its worker started it
        self.hops: tuple[HopStatus, ...] = ()
        self.events: list[CaptureEvent] = []
        self.last_note = ""
        self._polling = False
        self.batch_ms: deque[float] = deque(maxlen=1000)  # UI time per batch (the bench reads it)
        self._title_text = ""
        self._note_level = ""
        self.fates_note = ""

    # --- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(title_text(self.vm, self.mac, self.path, self.state, 0), id="capture-title")
        yield CaptureHops(self.path, id="capture-hops")
        yield Static("", id="capture-promisc")
        yield Static(self.filters.text(), id="capture-filters")
        yield CaptureInputBar(id="capture-input-bar")
        with ContentSwitcher(initial="packets"):
            with Vertical(id="packets"):
                yield CapturePacketTable(max_rows=self.max_rows, id="capture-table")
                yield CaptureDetail(id="capture-detail")
            yield CaptureDhcp(id="dhcp")
        with Vertical(id="capture-fallback"):
            yield PathView(id="capture-path")
        yield Static("starting the capture…", id="capture-note")
        yield Footer()

    def _show_title(self) -> None:
        title = title_text(self.vm, self.mac, self.path, self.state, self.model.packets)
        if title != self._title_text:
            self._title_text = title
            self.query_one("#capture-title", Static).update(title)

    def on_mount(self) -> None:
        table = self.query_one(CapturePacketTable)
        lanes = []
        if self.path is not None:
            from kvmtui.capture.engine import capture_hops

            lanes = [Lane(i, str(h.dev), h.role) for i, h in capture_hops(self.path)]
        width = self.app.size.width
        table.set_lanes(lanes, compact=width < COMPACT_BELOW, narrow=width < NARROW_BELOW)
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
        empty = "No path known for this NIC (the host model has none)."
        drawing = self.query_one(PathView).show_path(self.path, empty=empty)
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
        if not bpf_change:
            self._start_fates()
        self.post_message(SessionStarted(gen, session, bpf))

    def _start_fates(self) -> None:
        """While the view is open, the kernel's drop tracer names why a packet ended (worker
        thread: it mounts tracefs and opens an instance of its own)."""
        tracker = start_fates(self.path)
        if tracker is None:
            return
        if self._stopping.is_set():
            tracker.stop()
            return
        self._fates = tracker
        if tracker.note:
            self.post_message(FatesNote(tracker.note))

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
                batch = annotate(self._fates, session.poll())
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
        self._show_hops(batch.hops)
        new = self.model.ingest(batch, self.filters)
        if new:
            self.query_one(CapturePacketTable).add_packets(new)
        if batch.dhcp:
            if self._lease_checker is not None:
                for key, tx in self.model.to_check(batch.dhcp):
                    self._check_lease(key, tx)
            self.query_one(CaptureDhcp).show_transactions(batch.dhcp, self.model.lease)
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
        """Under load: say how much the table passed over; a hop gone says why."""
        text = load_text(self.model, self.hops, self.events)
        if text and text != self.last_note:
            self._note(text, "warning")

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

    @on(FatesNote)
    def _fates_note(self, message: FatesNote) -> None:
        self.fates_note = f"drop reasons not traced: {message.text}"
        self.query_one(CaptureDetail).fates_note = self.fates_note

    @on(LeaseChecked)
    def _lease_checked(self, message: LeaseChecked) -> None:
        self.model.lease[message.key] = message.check
        tx = self.model.tx.get(message.key)
        if tx is not None:
            self.query_one(CaptureDhcp).show_transactions([tx], self.model.lease)

    @on(ExportDone)
    def _exported(self, message: ExportDone) -> None:
        if message.error:
            self.notify(f"export failed: {message.error}", severity="error", timeout=8)
            self._note(f"export to {message.path} failed: {message.error}", "error")
            return
        text = f"wrote {message.packets} packets ({message.rows} rows) to {message.path}"
        if self.model.evicted:  # say it: the file is not the whole session
            text += (
                f"; the {self.model.evicted} oldest rows had left the kept history "
                "(kvmtui trace --pcap writes a whole session)"
            )
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
        self.model.clear()
        self.query_one(CapturePacketTable).clear_packets()
        self.query_one(CaptureDetail).show_row(None, None)
        self.query_one(CaptureDhcp).clear_transactions()
        self._note("cleared")

    def on_resize(self) -> None:
        table = self.query_one(CapturePacketTable)
        width = self.size.width
        if table.set_lanes(table.lanes, width < COMPACT_BELOW, width < NARROW_BELOW):
            self._refilter()

    def _refilter(self) -> None:
        table = self.query_one(CapturePacketTable)
        table.clear_packets()
        rows = self.model.matching(self.filters, min(self.max_rows, REFILTER_ROWS))
        table.add_packets(rows)
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

    def _open_input(self, mode: str, value: str) -> None:
        self._input_mode = mode
        self.query_one(CaptureInputBar).open(mode, value, len(self.model.rows))

    def _close_input(self) -> None:
        self._input_mode = None
        self.query_one(CaptureInputBar).close()
        self.query_one(CapturePacketTable).focus()

    def _show_input_error(self, text: str | None) -> None:
        self.query_one(CaptureInputBar).error(text)

    def action_bpf(self) -> None:
        if self.state in ("unavailable", "failed"):
            return
        self._open_input("bpf", self.filters.bpf)

    def action_export(self) -> None:
        default = self._export_default or default_export_path(self.vm)
        self._open_input("export", default)

    @on(CaptureInput.Cancelled)
    def _input_cancelled(self) -> None:
        self._show_input_error(None)
        self._close_input()

    @on(Input.Submitted, "#capture-input")
    def _input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self._input_mode == "export":
            self._close_input()
            rows = self.model.all_rows()
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
        self.app.push_screen(CaptureHelp(help_keys(self)))

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
        fates, self._fates = self._fates, None
        if fates is not None:
            _stop_in_thread(fates)

    # --- for tests and the bench --------------------------------------------------------------

    def shown_rows(self) -> list[tuple[str, PacketRow]]:
        table = self.query_one(CapturePacketTable)
        return [(k, r) for k in table.keys if (r := table.packet(k)) is not None]

    def kept_rows(self) -> Iterable[PacketRow]:
        return self.model.all_rows()
