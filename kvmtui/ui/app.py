"""kvmtui's explorer: a keyboard-driven Textual app over the host model.

Data flow (house style): the ``SnapshotSource`` is blocking, so every call to it runs in a thread
worker that posts a typed message (``SnapshotReady``, ``CountersReady``); handlers on the main
thread set the app's reactives (``snapshot``, ``rates``), which the panes watch. Worker failures
are handled in one place (``on_worker_state_changed``) and shown as one line, never a traceback.
Nothing heavy is imported here: the host's source and the doctor's engine load inside workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.reactive import var
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from kvmtui.core.model import HostSnapshot, LinkStats
from kvmtui.core.source import SnapshotSource
from kvmtui.doctor.model import HostDiagnosis
from kvmtui.lab.lessonmodel import Lesson
from kvmtui.ui.commands import GoToProvider, ScreensProvider
from kvmtui.ui.fmt import rates_between
from kvmtui.ui.identity import Identity, resolve
from kvmtui.ui.keymap import config_path, load_keymap
from kvmtui.ui.messages import CountersReady, DiagnosisReady, GoTo, SnapshotReady
from kvmtui.ui.screens.doctor import DoctorScreen
from kvmtui.ui.screens.help import HelpRow, HelpScreen, help_rows
from kvmtui.ui.screens.hostdoctor import HostDoctorScreen
from kvmtui.ui.screens.hosts import HostPickerScreen, seen_text
from kvmtui.ui.screens.lessons import LessonsScreen, Trigger
from kvmtui.ui.screens.switch import SwitchFactory, SwitchScreen
from kvmtui.ui.themes import DEFAULT_THEME, PRESENTER, PRESENTER_THEME, theme_name
from kvmtui.ui.throttle import Throttle
from kvmtui.ui.widgets.base import Pane
from kvmtui.ui.widgets.host_pane import HostPane
from kvmtui.ui.widgets.mac_pane import MacPane
from kvmtui.ui.widgets.networks_pane import NetworksPane
from kvmtui.ui.widgets.problems import ProblemBar
from kvmtui.ui.widgets.vms_pane import VmsPane

TABS = ("host", "macs", "networks", "vms")
RETRY_S = 3.0
DOCTOR_EVERY_S = 2.0  # at most one read of the host's facts per this many seconds

DoctorFn = Callable[[HostSnapshot], HostDiagnosis]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class KvmApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "kvmtui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    COMMANDS = App.COMMANDS | {GoToProvider, ScreensProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", id="app.help"),
        Binding("1", "show_tab('host')", "Host", show=False, id="app.tab.host"),
        Binding("2", "show_tab('macs')", "MACs", show=False, id="app.tab.macs"),
        Binding("3", "show_tab('networks')", "Networks", show=False, id="app.tab.networks"),
        Binding("4", "show_tab('vms')", "VMs", show=False, id="app.tab.vms"),
        Binding("c", "capture", "Capture", id="app.capture"),
        Binding("d", "doctor", "Doctor", id="app.doctor"),
        Binding("D", "host_doctor", "All VMs", show=False, id="app.host_doctor"),
        Binding("s", "switch", "Switch", id="app.switch"),
        Binding("L", "lessons", "Lessons", show=False, id="app.lessons"),
        Binding("H", "hosts", "Hosts", show=False, id="app.hosts"),  # the header says H
        Binding("t", "toggle_theme", "Theme", show=False, id="app.theme"),
        Binding("x", "clear_identity", "Unmark", show=False, id="app.clear_identity"),
        Binding("r", "reload", "Reload", show=False, id="app.reload"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    snapshot: var[HostSnapshot | None] = var(None, always_update=True)
    rates: var[dict[str, tuple[float, float]]] = var(dict)
    focus_identity: var[Identity | None] = var(None)
    selected_bridge: var[str | None] = var(None)
    trouble: var[str] = var("")
    diagnosis: var[HostDiagnosis | None] = var(None)
    doctor_trouble: var[str] = var("")  # why the last doctor run failed, "" when it ran

    def __init__(
        self,
        source: SnapshotSource | None = None,
        *,
        source_factory: Callable[[], SnapshotSource] | None = None,
        start_theme: str | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        poll_s: float | None = 1.0,
        keymap_path: Path | None = None,
        retry_s: float = RETRY_S,
        doctor: DoctorFn | None = None,
        switch_factory: SwitchFactory | None = None,
        lessons: tuple[Lesson, ...] | None = None,
        trigger: Trigger | None = None,
        lang: str = "en",
        lab: str | None = None,
        start_vm: str | None = None,
        start_capture: bool = False,
        doctor_every_s: float = DOCTOR_EVERY_S,
        hosts: Sequence[str] = (),
        host_factory: Callable[[str], SnapshotSource] | None = None,
    ) -> None:
        super().__init__()
        if source is None and source_factory is None and not (hosts and host_factory):
            raise ValueError("KvmApp needs a source, a source_factory or hosts to pick from")
        self._source = source
        self._factory = source_factory
        self._source_lock = threading.Lock()
        self.hosts = tuple(hosts) if host_factory is not None else ()  # the picker's (H)
        self._host_factory = host_factory
        self.host: str | None = None  # the one of ``hosts`` being explored
        self._host_gen = 0  # bumped by each switch: messages of the host left are dropped
        self._seen: dict[str, str] = {}  # host -> what its last snapshot said, for the picker
        self._start_theme = theme_name(start_theme)
        self.clock = clock
        self._monotonic = monotonic
        self._poll_s = poll_s
        self._keymap_path = keymap_path
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._watching = self._polling = False
        self._prev_counters: tuple[float, Mapping[str, LinkStats]] | None = None
        self._problems_text: list[str] = []
        self.first_paint_at: float | None = None
        self.first_snapshot_at: float | None = None
        self._doctor = doctor
        self._bindings_state: tuple[bool | None, bool | None] | None = None  # footer keys shown
        self._doctor_runs: Throttle[HostSnapshot] = Throttle(
            doctor_every_s, self.run_doctor, self.set_timer, stopped=lambda: self._stop.is_set()
        )
        self._switch_factory = switch_factory
        self._lessons = lessons
        self._trigger = trigger
        self.lang = lang
        self.lab = lab
        self._start_vm = start_vm
        self._start_capture = start_capture
        self._reloading = False
        self.exit_message: str | None = None  # one line launch.run prints after the app ends

    # --- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield ProblemBar(id="problems")
        with TabbedContent(initial="host", id="tabs"):
            with TabPane("Host 1", id="host"):
                yield HostPane(id="host-pane")
            with TabPane("MACs 2", id="macs"):
                yield MacPane(id="mac-pane")
            with TabPane("Networks 3", id="networks"):
                yield NetworksPane(id="networks-pane")
            with TabPane("VMs 4", id="vms"):
                yield VmsPane(id="vms-pane")
        yield Footer()

    def on_mount(self) -> None:
        self.register_theme(PRESENTER)
        self.theme = self._start_theme
        keymap, problem = load_keymap(self._keymap_path)
        if keymap:
            self.set_keymap(keymap)
        if problem:
            self.notify(problem, severity="warning", timeout=8)
        self.sub_title = "reading the host…"
        self.call_after_refresh(self._painted)
        if self.hosts and self._source is None and self._factory is None:
            self.sub_title = "pick a host"
            self.push_screen(HostPickerScreen(self.hosts), self.open_host)
        else:
            self.load_host()

    def _painted(self) -> None:
        if self.first_paint_at is None:
            self.first_paint_at = time.monotonic()

    # --- data: workers and their messages ---------------------------------------------------

    @property
    def source(self) -> SnapshotSource | None:
        """The host model source, once a worker has made it (None before)."""
        return self._source

    def _get_source(self) -> SnapshotSource:
        with self._source_lock:  # workers race for it; a host switch swaps it under the lock
            if self._source is None:
                assert self._factory is not None
                self._source = self._factory()
            return self._source

    @work(thread=True, exclusive=True, group="snapshot", exit_on_error=False)
    def load_host(self) -> None:
        gen = self._host_gen
        snap = self._get_source().snapshot()
        self.post_message(SnapshotReady(snap, gen))

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def watch_host(self) -> None:
        gen, stop = self._host_gen, self._stop

        def changed(snap: HostSnapshot) -> None:
            self.post_message(SnapshotReady(snap, gen))  # post_message is thread-safe

        self._get_source().watch(changed, stop)

    @work(thread=True, exclusive=True, group="counters", exit_on_error=False)
    def poll_counters(self) -> None:
        gen = self._host_gen
        counters = self._get_source().counters()
        self.post_message(CountersReady(counters, self._monotonic(), gen))

    def open_host(self, target: str | None) -> None:
        """Explore ``target``, one of ``hosts`` (the picker's choice): the host left behind
        stops being watched and its source closes; the panes start over from the new host's
        first snapshot."""
        if target is None or target == self.host or self._host_factory is None:
            return
        factory = self._host_factory
        with self._source_lock:  # no worker makes a source of the old host from here on
            old, self._source = self._source, None
            self._factory = lambda: factory(target)
        self._stop.set()  # the old host's watch returns
        self._stop = threading.Event()
        if old is not None:
            threading.Thread(target=old.close, name="kvmtui-close", daemon=True).start()
        self.host, self._host_gen = target, self._host_gen + 1
        self._watching, self._prev_counters, self.trouble = False, None, ""
        self.snapshot = None  # first: panes that pick a default bridge see no host
        self.focus_identity = self.selected_bridge = self.diagnosis = None
        self.rates = {}
        self.sub_title = f"reading {target}…"
        self.load_host()

    def action_hosts(self) -> None:
        picker = HostPickerScreen(self.hosts, self.host, self._seen)
        self.push_screen(picker, self.open_host)

    def _schedule_poll(self) -> None:
        if self._poll_s is not None and not self._stop.is_set():
            self.set_timer(self._poll_s, self._poll_now)

    def _poll_now(self) -> None:
        if self._stop.is_set():
            return
        if isinstance(self.screen, ModalScreen):  # nothing to see behind a modal: skip a beat
            self._schedule_poll()
            return
        self.poll_counters()

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
        if self._stop.is_set() or message.gen != self._host_gen:
            return
        snap = message.snapshot
        if self.host is not None:
            self._seen[self.host] = seen_text(snap)
        if self.first_snapshot_at is None:
            self.first_snapshot_at = time.monotonic()
        self.trouble = ""
        self.snapshot = snap
        self.sub_title = snap.hostname + (f" · {snap.libvirt_uri}" if snap.libvirt_uri else "")
        if self.host is not None:  # several --host: which one, and the key back to the picker
            self.sub_title = f"{self.host} (H: hosts) · {self.sub_title}"
        if self.focus_identity is not None:  # re-resolve against the new host state
            ident = self.focus_identity
            self.focus_identity = resolve(
                snap,
                vm=ident.vm,
                mac=next(iter(sorted(ident.macs)), None),
                tap=next(iter(sorted(ident.taps)), None),
            )
        if self._reloading:
            self._reloading = False
            self.notify(
                f"re-read the host: {len(snap.vms)} VMs, {len(snap.bridges)} bridges",
                timeout=3,
            )
        if self._start_vm is not None:
            self._open_start_vm(snap, self._start_vm)
        self._doctor_wanted(snap)
        if not self._watching:
            self._watching = True
            self.watch_host()
            if self._poll_s is not None and not self._polling:
                self._polling = True  # one poll chain for the app's life (a re-watch or a
                self._poll_now()  # host switch reuses it: two chains would poll twice as often

    def _open_start_vm(self, snap: HostSnapshot, key: str) -> None:
        """``kvmtui --vm VM [--capture]``: select that VM (any name the resolver takes) in the
        VMs tab, and start its capture; an unknown name ends the app with one line, exit 2."""
        from kvmtui.core.resolve import UnknownVm
        from kvmtui.core.resolve import resolve as resolve_vm

        self._start_vm = None
        try:
            found = resolve_vm(snap, key)
        except UnknownVm as exc:
            self.exit_message = f"kvmtui: {exc}"
            self.exit(return_code=2)
            return
        mac = found.nics[0].mac if found.nics else None
        self.action_show_tab("vms")
        self.query_one(VmsPane).select_vm(found.vm.name, mac)
        self.focus_identity = resolve(snap, vm=found.vm.name, mac=mac)
        if self._start_capture:
            self.call_after_refresh(self.action_capture)

    # --- the doctor: facts read in a worker, throttled; diagnose is pure --------------------

    @property
    def doctor_on(self) -> bool:
        """The doctor runs (a live host; a recording or SSH host has no facts to read here)."""
        return self._doctor is not None

    def _doctor_wanted(self, snap: HostSnapshot) -> None:
        if self._doctor is not None:  # the newest snapshot, one run at a time, throttled
            self._doctor_runs.want(snap)

    @work(thread=True, exclusive=True, group="doctor", exit_on_error=False)
    def run_doctor(self, snap: HostSnapshot) -> None:
        assert self._doctor is not None
        self.post_message(DiagnosisReady(self._doctor(snap), snap))

    @on(DiagnosisReady)
    def _diagnosis_ready(self, message: DiagnosisReady) -> None:
        self.doctor_trouble = ""
        self.diagnosis = message.diagnosis

    @on(CountersReady)
    def _counters_ready(self, message: CountersReady) -> None:
        if message.gen != self._host_gen:
            return
        prev = self._prev_counters
        self._prev_counters = (message.at, message.counters)
        if prev is not None and message.at > prev[0]:
            self.rates = rates_between(prev[1], message.counters, message.at - prev[0])

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "counters" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self._schedule_poll()
        if worker.group == "doctor" and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self._doctor_runs.done()
        if event.state != WorkerState.ERROR or self._stop.is_set():
            return
        exc = worker.error
        msg = _one_line(exc) if exc is not None else "unknown error"
        code = getattr(exc, "code", None)
        if worker.group == "snapshot" and type(exc).__name__ == "HostUnavailable" and code == 2:
            self.exit_message = f"kvmtui: {exc}"  # a bad recording: bad input, not a retry
            self.exit(return_code=2)
            return
        if worker.group == "doctor":
            if msg != self.doctor_trouble:  # once per distinct failure, not every 2 s
                self.notify(f"doctor: {msg}", severity="warning", timeout=5)
            self.doctor_trouble = msg
            return
        if worker.group == "counters":
            return  # rates just stay as they were; the next poll may work
        if worker.group == "snapshot":
            self.trouble = f"cannot read the host: {msg} (retrying in {self.retry_s:g} s)"
            self.set_timer(self.retry_s, self.load_host)
        elif worker.group == "watch":
            self.trouble = f"lost the host's change feed: {msg} (reconnecting)"
            self._watching = False
            self.set_timer(self.retry_s, self.load_host)

    def watch_snapshot(self, snap: HostSnapshot | None) -> None:
        self._show_problems()

    def watch_trouble(self, trouble: str) -> None:
        self._show_problems()

    def _show_problems(self) -> None:
        snap = self.snapshot
        problems = snap.problems if snap is not None else ()
        self._problems_text = [f"{p.source}: {p.message}" for p in problems]
        if self.trouble:
            self._problems_text.insert(0, self.trouble)
        # a snapshot can land while the app shuts down and its widgets are already gone
        base = self.screen_stack[0] if self.screen_stack else None
        for bar in base.query(ProblemBar) if base is not None else ():
            bar.show(problems, self.trouble)

    # --- actions ----------------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        if tabs.active == tab:
            self._focus_tab(tab)
        else:
            tabs.active = tab  # TabActivated then focuses the pane's main widget

    def _focus_tab(self, tab: str) -> None:
        pane = self.query_one(f"#{tab}", TabPane).query(Pane).first()
        widget = pane.main_widget()
        tabs = self.query_one(TabbedContent)

        def focus() -> None:
            # only if that tab is still the one shown (a quick 2-3-4 must not bounce back)
            if widget is not None and tabs.active == tab and not widget.has_focus:
                widget.focus()

        self.call_after_refresh(focus)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self._focus_tab(event.pane.id)
        self._refresh_bindings_if_changed()

    def action_show_macs(self, bridge: str) -> None:
        self.selected_bridge = bridge
        self.action_show_tab("macs")

    def action_toggle_theme(self) -> None:
        self.theme = DEFAULT_THEME if self.theme == PRESENTER_THEME else PRESENTER_THEME
        self.notify(f"theme: {'presenter' if self.theme == PRESENTER_THEME else 'default'}")

    def action_clear_identity(self) -> None:
        self.focus_identity = None

    def action_reload(self) -> None:
        self._reloading = True
        self.notify("re-reading the host…", timeout=2)
        self.load_host()

    def _capture_target(self) -> tuple[str, str] | None:
        ident = self.focus_identity
        snap = self.snapshot
        if (ident is None or ident.vm is None) and snap is not None:
            cur = self.query_one(VmsPane).current  # the VMs tab's row, when nothing is marked
            if cur is not None and self.query_one(TabbedContent).active == "vms":
                ident = resolve(snap, vm=cur[0], mac=cur[1])
        if ident is None or ident.vm is None or snap is None:
            return None
        vm = snap.vm(ident.vm)
        if vm is None or not vm.nics:
            return None
        nic = next((n for n in vm.nics if n.mac in ident.macs), vm.nics[0])
        return vm.name, nic.mac

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hosts":  # only with several --host, only from the explorer itself
            return bool(self.hosts) and self.screen is self.screen_stack[0]
        if isinstance(self.screen, HostPickerScreen):
            return action == "quit"  # no explorer behind it to act on yet
        if action in ("doctor", "switch") and self.screen is not self.screen_stack[0]:
            return False  # the explorer's keys, not the capture or doctor screens'
        if action in ("capture", "doctor"):
            return True if self._capture_target() else None
        if action == "switch":
            tab = self.query_one(TabbedContent).active
            return True if tab in ("host", "macs") and self.selected_bridge else None
        return True

    def _refresh_bindings_if_changed(self) -> None:
        # the footer recomposes on every refresh_bindings; the poll re-selects the same things
        # every tick, so recompose only when a key's enabled state really changes
        if not self.screen_stack:  # set before the app runs (or after it ended)
            return
        try:
            state = (self.check_action("capture", ()), self.check_action("switch", ()))
        except NoMatches:  # not composed yet
            return
        if state != self._bindings_state:
            self._bindings_state = state
            self.refresh_bindings()

    def watch_selected_bridge(self, bridge: str | None) -> None:
        self._refresh_bindings_if_changed()

    def action_doctor(self) -> None:
        target = self._capture_target()
        if target is None:
            self.notify("Select a VM or one of its NICs first", severity="warning")
            return
        self.push_screen(DoctorScreen(*target))

    def action_host_doctor(self) -> None:
        self.push_screen(HostDoctorScreen())

    def action_switch(self, bridge: str | None = None) -> None:
        name = bridge or self.selected_bridge
        if not name:
            self.notify("Select a bridge first (Host tree or MAC table)", severity="warning")
            return
        self.push_screen(SwitchScreen(name, factory=self._switch_factory))

    def action_lessons(self) -> None:
        self.push_screen(
            LessonsScreen(
                lang=self.lang,
                prefix=self.lab,
                lessons=self._lessons,
                trigger=self._trigger,
                on_view=self.open_lesson_view,
            )
        )

    def open_lesson_view(self, lesson: Lesson) -> None:
        """After a lesson's experiment ran: the view that proves its claim."""
        snap = self.snapshot
        vm_name = None
        if lesson.vm and snap is not None:
            from kvmtui.core.resolve import find_vm

            found = find_vm(snap, lesson.vm)
            vm_name = found[0].name if found else None
        if lesson.view == "switch":
            bridge = lesson.bridge or self.selected_bridge
            if bridge:
                self.push_screen(SwitchScreen(bridge, factory=self._switch_factory))
            return
        if vm_name is None or snap is None:
            self.notify(f"the lesson's VM {lesson.vm} is not on this host", severity="warning")
            return
        self.go_to("vm", vm_name)
        if lesson.view in ("capture", "dhcp"):  # the DHCP lesson opens on the DHCP view
            self.call_after_refresh(self.action_capture, "dhcp" if lesson.view == "dhcp" else "")
        elif lesson.view == "doctor":
            self.call_after_refresh(self.action_doctor)
        elif lesson.view == "path":
            self.pop_screen()  # the VMs tab shows the path

    def watch_focus_identity(self, identity: Identity | None) -> None:
        self._refresh_bindings_if_changed()

    def action_capture(self, view: str = "") -> None:
        target = self._capture_target()
        if target is None:
            self.notify("Select a VM or one of its NICs first", severity="warning")
            return
        from kvmtui.ui.screens.capture import CaptureScreen

        vm, mac = target
        snap = self.snapshot
        path = next((p for p in snap.paths_of(vm) if p.mac == mac), None) if snap else None
        self.push_screen(CaptureScreen(vm, mac, path, view=view or "packets"))

    def help_rows(self) -> tuple[str, list[HelpRow]]:
        """The keys that work where the focus is (nearest widget first), keymap applied."""
        return help_rows(self)

    def action_help(self) -> None:
        title, rows = self.help_rows()
        tab = self.query_one(TabbedContent).active
        self.push_screen(HelpScreen(f"{title} in the {tab} tab", rows, self._problems_text))

    @on(GoTo)
    def _go_to(self, message: GoTo) -> None:
        self.go_to(message.kind, message.name)

    def go_to(self, kind: str, name: str) -> None:
        """Palette target: show the pane for it, put the cursor on it, mark its identity."""
        snap = self.snapshot
        if kind == "vm":
            self.action_show_tab("vms")
            self.query_one(VmsPane).select_vm(name)
            self.focus_identity = resolve(snap, vm=name)
        elif kind == "bridge":
            self.action_show_macs(name)
        elif kind == "network":
            self.action_show_tab("networks")
            self.query_one(NetworksPane).select_network(name)
        elif kind == "mac":
            bridge = None
            if snap is not None:
                bridge = next(
                    (b.name for b in snap.bridges if any(e.mac == name for e in b.fdb)), None
                )
            if bridge:
                self.selected_bridge = bridge
            self.action_show_tab("macs")
            self.call_after_refresh(self.query_one(MacPane).select_mac, name)
            self.focus_identity = resolve(snap, mac=name)

    def exit(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        self._stop.set()
        super().exit(*args, **kwargs)  # type: ignore[arg-type]

    def on_unmount(self) -> None:
        self._stop.set()


__all__ = ["KvmApp", "config_path"]
