"""Live capture of one VM NIC: its packets crossing tap, bridge, NAT and uplink.

The screen composes the panes (``kvmtui/ui/widgets/capture_*``: hop strip, packet table, detail,
DHCP view, input line) and handles, on the main thread, what its thread side
(:class:`~kvmtui.ui.capture_runner.CaptureRunner`: the session, its polls, lease checks,
exports) posts; the rows and filters live in :class:`~kvmtui.ui.capture_model.CaptureModel`.
Rows are added to the table by key, the cursor stays put, and the table holds a bounded number
of rows. A bad BPF expression is refused before any socket is touched, with libpcap's message
under the input, and the capture goes on with the old filter.

The session runs in the namespace of the app's source (``LiveHost(netns=...)``): the lab's
host namespace in the lab tests, the current namespace in the real product. A source that is
not a live host (a fixed snapshot) cannot be captured: the screen says so and shows the path.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.engine import CaptureBatch, CaptureEvent, HopStatus
from kvmtui.core.model import NicPath
from kvmtui.ui.capture_model import (
    CAPTURE_BINDINGS,
    COMPACT_BELOW,
    NARROW_BELOW,
    NO_LIVE_SOURCE,
    REFILTER_ROWS,
    CaptureModel,
    Filters,
    default_export_path,
    event_note,
    export_text,
    load_text,
    title_text,
)
from kvmtui.ui.capture_runner import (
    POLL_S,
    BatchReady,
    CaptureRunner,
    ExportDone,
    FatesNote,
    LeaseChecked,
    LeaseChecker,
    SessionFactory,
    SessionFailed,
    SessionStarted,
    libvirt_lease_checker,
    live_factory,
    one_line,
)
from kvmtui.ui.widgets.capture_detail import CaptureDetail
from kvmtui.ui.widgets.capture_dhcp import CaptureDhcp
from kvmtui.ui.widgets.capture_hops import CaptureHops, promisc_note
from kvmtui.ui.widgets.capture_input import CAPTURE_CSS, CaptureHelp, CaptureInputBar, help_keys
from kvmtui.ui.widgets.capture_note import CaptureNote
from kvmtui.ui.widgets.capture_table import MAX_ROWS, CapturePacketTable, Lane
from kvmtui.ui.widgets.path_view import PathView

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
        view: str = "packets",
    ) -> None:
        super().__init__()
        self.first_view = view  # "dhcp": open on the DHCP view (the DHCP lesson)
        self.vm = vm
        self.mac = mac
        self.path = path
        self.max_rows = max_rows
        self.runner = CaptureRunner(self, path, poll_s)
        self.runner.factory = session_factory
        self.runner.lease_checker = lease_checker
        self._export_default = export_default
        self.filters = Filters()
        self.pending_bpf: str | None = None
        self.paused = False
        self.state = "starting"  # starting, capturing, paused, failed, unavailable
        self.model = CaptureModel()
        self.hops: tuple[HopStatus, ...] = ()
        self.events: list[CaptureEvent] = []
        self.batch_ms: deque[float] = deque(maxlen=1000)  # UI time per batch (the bench reads it)
        self._title_text = ""
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
        yield CaptureNote("starting the capture…", id="capture-note")
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
        if self.first_view != "packets":
            self.action_view(self.first_view)
        runner = self.runner
        if runner.factory is None:
            runner.factory, uri = live_factory(self.app)
            if runner.lease_checker is None and runner.factory is not None:
                runner.lease_checker = libvirt_lease_checker(uri)
        if runner.factory is None:
            self._unavailable(NO_LIVE_SOURCE, "warning")
            return
        if self.path is None:
            self._unavailable("No path is known for this NIC: nothing to capture.", "error")
            return
        runner.open(self.filters.bpf, False)

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
        self.query_one(CaptureNote).say(text, level)

    @property
    def last_note(self) -> str:
        """What the screen said last (the line under the panes)."""
        return self.query_one(CaptureNote).text

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and not self.runner.stopping.is_set():
            exc = event.worker.error
            self._note(f"{event.worker.group}: {one_line(exc) if exc else 'failed'}", "error")

    # --- handlers -----------------------------------------------------------------------------

    @on(SessionStarted)
    def _started(self, message: SessionStarted) -> None:
        if not self.runner.adopt(message):
            return
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
        self.runner.poll()

    @on(SessionFailed)
    def _failed(self, message: SessionFailed) -> None:
        if message.bpf_change:
            # the capture goes on with the old filter
            self.pending_bpf = None
            self._show_filters()
            text = f"{message.message} (still capturing with the old filter)"
            self.query_one(CaptureInputBar).error(text)
            return
        if not self.runner.lost(message):
            return
        self.state = "failed"
        self.add_class("-unavailable")
        self._show_title()
        self._note(message.message, "error")
        self._show_path()

    @on(BatchReady)
    def _batch(self, message: BatchReady) -> None:
        try:
            if self.runner.current(message.gen):
                self.apply_batch(message.batch)
        finally:
            self.runner.batch_handled()

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
            if self.runner.lease_checker is not None:
                for key, tx in self.model.to_check(batch.dhcp):
                    self.runner.check_lease(key, tx)
            self.query_one(CaptureDhcp).show_transactions(batch.dhcp, self.model.lease)
        for ev in batch.events:
            self.events.append(ev)
            self._note(*event_note(ev))
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
        text = export_text(
            message.path, message.packets, message.rows, self.model.evicted, message.whole
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
        session = self.runner.session
        if session is None:
            return
        self.paused = not self.paused
        if self.paused:
            session.pause()
            self.state = "paused"
            self._note("paused: the kernel still counts, nothing is correlated (space resumes)")
        else:
            session.resume()
            self.state = "capturing"
            self._note("resumed", "ok")
        self._show_title()

    def action_clear(self) -> None:
        if self.runner.session is not None:
            self.runner.session.clear()
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
        self.filters = self.filters.next_proto()
        self._refilter()

    def action_cycle_direction(self) -> None:
        self.filters = self.filters.next_direction()
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

    def action_bpf(self) -> None:
        if self.state in ("unavailable", "failed"):
            return
        self.query_one(CaptureInputBar).open("bpf", self.filters.bpf)

    def action_export(self) -> None:
        default = self._export_default or default_export_path(self.vm)
        self.query_one(CaptureInputBar).open("export", default, len(self.model.rows))

    @on(CaptureInputBar.Closed)
    def _input_closed(self) -> None:
        self.query_one(CapturePacketTable).focus()

    @on(CaptureInputBar.Submitted)
    def _input_submitted(self, event: CaptureInputBar.Submitted) -> None:
        if event.mode == "export":
            self.query_one(CaptureInputBar).close()
            if event.value:
                self.runner.export(event.value, self.model.all_rows())
        elif event.mode == "bpf":
            self.apply_bpf(event.value)

    def apply_bpf(self, expr: str) -> bool:
        """Check ``expr`` (libpcap) before use; on success restart the session with it."""
        from kvmtui.capture.bpf import check_filter

        err = check_filter(expr) if expr else None
        if err is not None:
            self.query_one(CaptureInputBar).error(f"{err} (still capturing with the old filter)")
            return False
        bar = self.query_one(CaptureInputBar)
        bar.error(None)
        bar.close()
        if expr == self.filters.bpf:
            return True
        self.pending_bpf = expr
        self._show_filters()
        self.runner.open(expr, True)
        return True

    def action_help(self) -> None:
        self.app.push_screen(CaptureHelp(help_keys(self)))

    def action_close(self) -> None:
        self.runner.shutdown()
        self.app.pop_screen()

    def on_unmount(self) -> None:
        self.runner.shutdown()  # the sockets close: the bridge's promiscuity goes with them

    # --- for tests and the bench --------------------------------------------------------------

    def shown_rows(self) -> list[tuple[str, PacketRow]]:
        table = self.query_one(CapturePacketTable)
        return [(k, r) for k in table.keys if (r := table.packet(k)) is not None]

    def kept_rows(self) -> Iterable[PacketRow]:
        return self.model.all_rows()
