"""``s``: the switch view of one bridge: one row per frame, the port it came in by, the ports it
left by and why (forward / flood / broadcast / multicast / local / filtered, with the FDB entry
that decided it), FDB learning and aging between the frames, exact per-port counts on top, and
"sampled" said on screen when a flood makes the list a sample (the counts stay exact).

The session (``kvmtui.capture.switch.SwitchSession``) blocks: it runs in a thread worker that
posts one :class:`SwitchBatchReady` per poll and waits for it to be handled (backpressure)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import ClassVar, Protocol

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from kvmtui.capture.switchmodel import FdbEvent, PortCount, SwitchBatch, SwitchRow, out_cell
from kvmtui.core.model import Bridge, HostSnapshot
from kvmtui.ui.widgets.line_table import LineTable

POLL_S = 0.2
KEEP = 2000
COLUMNS = [("t", "Time"), ("in", "In"), ("out", "Out"), ("decision", "Decision"), ("what", "Frame")]


class SwitchLike(Protocol):
    def start(self) -> None: ...
    def poll(self) -> SwitchBatch: ...
    def stop(self) -> None: ...


SwitchFactory = Callable[[Bridge, HostSnapshot], SwitchLike]


def real_switch(bridge: Bridge, snap: HostSnapshot, netns: str | None = None) -> SwitchLike:
    from kvmtui.capture.switch import SwitchSession  # heavy: capture sockets, in the worker

    session: SwitchLike = SwitchSession(bridge, snap, netns=netns)
    return session


class SwitchBatchReady(Message):
    def __init__(self, batch: SwitchBatch) -> None:
        super().__init__()
        self.batch = batch


def frame_cell(src: str, dst: str, proto: str) -> str:
    """'ICMP 192.168.100.74 → .75': the protocol first, and the destination's part shared with
    the source left out (two VMs of one subnet), so the cell fits at 80 columns."""
    a, b = src.split("."), dst.split(".")
    if len(a) == len(b) == 4 and a[:3] == b[:3]:
        dst = "." + b[3]
    return f"{proto.upper()} {src} → {dst}"


def row_cells(row: SwitchRow, t0: int) -> tuple[str, ...]:
    return (f"+{(row.time_ns - t0) / 1e9:.3f}", row.in_port, out_cell(row), row.decision,
            frame_cell(row.src, row.dst, row.proto))  # fmt: skip


def event_cells(ev: FdbEvent, t0: int) -> tuple[str, ...]:
    return (f"+{(ev.time_ns - t0) / 1e9:.3f}", "fdb", ev.port or "", ev.kind, ev.text)


def counts_markup(counts: tuple[PortCount, ...]) -> str:
    if not counts:
        return "[$text-muted]per port: no frames yet[/]"
    parts = [
        f"[b]{escape(c.port)}[/b] in {c.rx_frames} out {c.tx_frames}"
        + (f" [$error]drop {c.dropped}[/]" if c.dropped else "")
        for c in counts
    ]
    return "frames per port (exact): " + " · ".join(parts)


class SwitchScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="switch.back"),
        Binding("f", "follow", "Follow", id="switch.follow"),
    ]
    DEFAULT_CSS = """
    SwitchScreen #switch-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    SwitchScreen #switch-counts { height: auto; max-height: 3; padding: 0 1; }
    SwitchScreen #switch-sampled { height: 1; padding: 0 1; display: none;
                                   background: $warning 20%; }
    SwitchScreen.-sampled #switch-sampled { display: block; }
    SwitchScreen LineTable { height: 1fr; border: round $panel; }
    SwitchScreen LineTable:focus { border: heavy $accent; }
    SwitchScreen #switch-detail { height: 3; padding: 0 1; color: $text-muted; }
    """

    def __init__(
        self, bridge: str, *, factory: SwitchFactory | None = None, poll_s: float = POLL_S
    ) -> None:
        super().__init__()
        self.bridge = bridge
        self._factory = factory
        self._netns: str | None = None
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._handled = threading.Event()
        self._handled.set()
        self._items: deque[tuple[int, str, tuple[str, ...], str]] = deque(maxlen=KEEP)
        self._details: dict[str, str] = {}
        self._seq = 0
        self._t0: int | None = None
        self.follow = True
        self.counts: tuple[PortCount, ...] = ()
        self.sampled = False
        self.state = "starting"

    def compose(self) -> ComposeResult:
        yield Static(f"Switch view · {escape(self.bridge)} · starting…", id="switch-title")
        yield Static(counts_markup(()), id="switch-counts")
        yield Static(
            "sampled: under this flood the list is a sample; the counts are exact",
            id="switch-sampled",
        )
        yield LineTable(COLUMNS, id="switch-table")
        yield Static("", id="switch-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(LineTable).focus()
        snap = getattr(self.app, "snapshot", None)
        bridge = snap.bridge(self.bridge) if snap is not None else None
        if snap is None or bridge is None:
            self._title(f"no bridge {self.bridge} on this host")
            self.state = "failed"
            return
        # the bridge lives where the app's host model is read: LiveHost(netns=...) reads the
        # lab's KVM host from outside it, and the capture sockets must be opened there too
        netns = getattr(getattr(self.app, "source", None), "netns", None)
        self._netns = netns if isinstance(netns, str) else None
        self.run_session(bridge, snap)

    def _title(self, words: str) -> None:
        self.query_one("#switch-title", Static).update(
            escape(f"Switch view · {self.bridge} · {words}")
        )

    def _session(self, bridge: Bridge, snap: HostSnapshot) -> SwitchLike:
        if self._factory is not None:
            return self._factory(bridge, snap)
        return real_switch(bridge, snap, self._netns)

    @work(thread=True, exclusive=True, group="switch", exit_on_error=False)
    def run_session(self, bridge: Bridge, snap: HostSnapshot) -> None:
        session = self._session(bridge, snap)
        try:
            session.start()
            while not self._stop.is_set():
                batch = session.poll()
                self._handled.clear()
                self.post_message(SwitchBatchReady(batch))
                if not batch.running:
                    break
                while not self._stop.is_set() and not self._handled.wait(0.1):
                    pass  # backpressure: the next batch only once the last one is shown
                self._stop.wait(self.poll_s)
        finally:
            session.stop()

    @on(SwitchBatchReady)
    def _batch(self, message: SwitchBatchReady) -> None:
        try:
            self.show_batch(message.batch)
        finally:
            self._handled.set()

    def show_batch(self, batch: SwitchBatch) -> None:
        if batch.error:
            self.state = "failed"
            self._title(f"stopped: {batch.error}")
        else:
            self.state = "capturing" if batch.running else "stopped"
            self._title("every port, live" if batch.running else "stopped")
        items = [(r.time_ns, r) for r in batch.rows] + [(e.time_ns, e) for e in batch.events]
        items.sort(key=lambda x: x[0])
        for t, item in items:
            if self._t0 is None:
                self._t0 = t
            self._seq += 1
            key = f"i{self._seq}"
            if isinstance(item, SwitchRow):
                cells = row_cells(item, self._t0)
                detail = f"{item.summary}\n{item.because}" if item.because else item.summary
            else:
                cells = event_cells(item, self._t0)
                detail = item.text
            self._items.append((t, key, cells, detail))
        if batch.counts:
            self.counts = batch.counts
            self.query_one("#switch-counts", Static).update(counts_markup(batch.counts))
        self.sampled = self.sampled or batch.sampled
        self.set_class(self.sampled, "-sampled")
        if items:
            self._details = {k: d for _t, k, _c, d in self._items}
            table = self.query_one(LineTable)
            table.sync_rows([(k, c) for _t, k, c, _d in self._items])
            if self.follow:
                table.move_cursor(row=table.row_count - 1)

    @on(LineTable.RowHighlighted, "#switch-table")
    def _row(self, event: LineTable.RowHighlighted) -> None:
        table = self.query_one(LineTable)
        key = str(event.row_key.value)
        if table.user_moved_to(key):
            self.follow = event.cursor_row >= table.row_count - 1
        self.query_one("#switch-detail", Static).update(escape(self._details.get(key, "")))

    def action_follow(self) -> None:
        self.follow = True
        table = self.query_one(LineTable)
        table.move_cursor(row=table.row_count - 1)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "switch":
            event.stop()  # this screen's worker: its error is said here, not by the app
            if event.state == WorkerState.ERROR:
                _worker_error(self, event.worker.error)

    def on_unmount(self) -> None:
        self._stop.set()
        self._handled.set()


def _worker_error(screen: SwitchScreen, error: BaseException | None) -> None:
    text = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
    screen.state = "failed"
    screen._title(f"cannot watch the bridge: {type(error).__name__}: {text}" if text else "failed")
