"""The capture screen's thread side: the session it drives and the workers around it.

:class:`CaptureRunner` opens the engine's ``CaptureSession`` (a netlink dump and one socket per
hop), polls it every ~100 ms, asks libvirt about leases and writes pcapng, each in a thread
worker of the screen, and reports every result as a message the screen handles on the main
thread (house style: thread worker -> typed message -> handler). It never touches a widget.

Backpressure: one :class:`BatchReady` is in flight at a time; the next poll waits until the
screen said it handled the last (:meth:`CaptureRunner.batch_handled`), so a slow UI makes
batches bigger, not the queue longer. A BPF change opens a new session under a new generation;
messages of an older generation are dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message
from textual.worker import get_current_worker

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.dhcp import DhcpTransaction, LeaseCheck
from kvmtui.capture.engine import CaptureBatch
from kvmtui.core.model import NicPath

if TYPE_CHECKING:
    from textual.screen import Screen

    from kvmtui.capture.spool import SessionSpool
    from kvmtui.doctor.fate import FateTracker

log = logging.getLogger(__name__)

POLL_S = 0.1


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
    def __init__(
        self, path: str, packets: int, rows: int, error: str | None = None, whole: bool = False
    ) -> None:
        super().__init__()
        self.path, self.packets, self.rows, self.error = path, packets, rows, error
        self.whole = whole  # every frame of the session (the spool), not the kept rows


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


def libvirt_lease_checker(uri: str | None) -> LeaseChecker:
    def check(tx: DhcpTransaction) -> LeaseCheck:
        from kvmtui.capture.dhcp import check_lease

        return check_lease(tx, uri)

    return check


class Stoppable(Protocol):
    def stop(self) -> None: ...


def stop_quietly(session: Stoppable) -> None:
    # closing sockets of a vanished device may fail: nothing the user can act on
    with contextlib.suppress(Exception):
        session.stop()


def stop_in_thread(session: Stoppable) -> None:
    # not a daemon: the app waits for the sockets to close before the process exits
    threading.Thread(target=stop_quietly, args=(session,), name="kvmtui-capture-stop").start()


def _close_after(session: Stoppable | None, spool: SessionSpool) -> None:
    if session is not None:
        stop_quietly(session)
    spool.close()


def start_fates(path: NicPath | None) -> FateTracker | None:
    """A started ``FateTracker`` on ``path`` (blocking: call it from a worker), or None when
    there is no path or the tracer failed to start. A tracker that could not trace (no root,
    no tracefs) keeps its one-line ``note`` and annotates nothing."""
    if path is None:
        return None
    from kvmtui.doctor.fate import FateTracker

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


class CaptureRunner:
    """One NIC's capture sessions, run in thread workers of ``screen``.

    The main thread calls :meth:`open`, :meth:`adopt`, :meth:`check_lease`, :meth:`export` and
    :meth:`shutdown`; the workers only post messages to the screen."""

    def __init__(self, screen: Screen[Any], path: NicPath | None, poll_s: float = POLL_S) -> None:
        self.screen = screen
        self.path = path
        self.poll_s = poll_s
        self.factory: SessionFactory | None = None
        self.lease_checker: LeaseChecker | None = None
        self.session: Session | None = None
        self.gen = 0  # the session generation whose messages count
        self.stopping = threading.Event()
        self._handled = threading.Event()  # the last batch was handled: the next may come
        self._handled.set()
        self._polling = False
        self._fates: FateTracker | None = None  # once the open worker started it
        self._spool: SessionSpool | None = None  # every frame of the session, for the export

    def _run(self, work: Callable[[], None], group: str, exclusive: bool = True) -> None:
        self.screen.run_worker(
            work, group=group, exclusive=exclusive, thread=True, exit_on_error=False
        )

    # --- main thread ------------------------------------------------------------------------

    def open(self, bpf: str, bpf_change: bool) -> None:
        """A new session with ``bpf`` (its generation makes older messages stale)."""
        self.gen += 1
        self._run(functools.partial(self._open, self.gen, bpf, bpf_change), "capture-open")

    def current(self, gen: int) -> bool:
        return gen == self.gen and not self.stopping.is_set()

    def adopt(self, message: SessionStarted) -> bool:
        """Take the started session in place of the old one (stopped); False, and the new one
        stopped, when it is stale."""
        if not self.current(message.gen):
            stop_in_thread(message.session)
            return False
        old, self.session = self.session, message.session
        if old is not None:
            stop_in_thread(old)
        return True

    def lost(self, message: SessionFailed) -> bool:
        """The current session failed (True) or an older one did (False, nothing changes)."""
        if message.gen != self.gen:
            return False
        self.session = None
        return True

    def poll(self) -> None:
        """Poll the adopted session from now on (one poll worker for the screen's life)."""
        self._handled.set()
        if not self._polling:
            self._polling = True
            self._run(self._poll_loop, "capture-poll")

    def batch_handled(self) -> None:
        self._handled.set()

    def check_lease(self, key: str, tx: DhcpTransaction) -> None:
        if self.lease_checker is not None:
            work = functools.partial(self._check_lease, self.lease_checker, key, tx)
            self._run(work, "capture-lease", exclusive=False)

    def export(self, path: str, rows: list[PacketRow]) -> None:
        self._run(functools.partial(self._export, path, rows), "capture-export")

    def shutdown(self) -> None:
        """Stop the session (its sockets close: the bridge's promiscuity goes with them)."""
        self.stopping.set()
        self._handled.set()
        session, self.session = self.session, None
        if session is not None:
            stop_in_thread(session)
        fates, self._fates = self._fates, None
        if fates is not None:
            stop_in_thread(fates)
        spool, self._spool = self._spool, None
        if spool is not None:  # removed once the session that feeds it has stopped
            threading.Thread(
                target=_close_after, args=(session, spool), name="kvmtui-spool-close"
            ).start()

    # --- worker threads -----------------------------------------------------------------------

    def _open(self, gen: int, bpf: str, bpf_change: bool) -> None:
        assert self.factory is not None and self.path is not None
        if not bpf_change:
            from kvmtui.capture import dissect

            dissect.preload()  # scapy in the background now: the first detail view is quick
        try:
            session = self.factory(self.path, bpf or None)
            if getattr(session, "sink", False) is None:  # a real engine: it feeds the spool
                session.sink = self._spool_for_export()  # type: ignore[attr-defined]
            session.start()
        except Exception as exc:
            self.screen.post_message(SessionFailed(gen, one_line(exc), bpf_change))
            return
        if self.stopping.is_set():
            stop_quietly(session)
            return
        if not bpf_change:
            self._start_fates()
        self.screen.post_message(SessionStarted(gen, session, bpf))

    def _spool_for_export(self) -> SessionSpool | None:
        if self._spool is None and not self.stopping.is_set():
            from kvmtui.capture.spool import SessionSpool

            try:
                self._spool = SessionSpool()
            except OSError:  # no private folder to keep it in: the export takes the rows
                return None
        return self._spool

    def _start_fates(self) -> None:
        """While the view is open, the kernel's drop tracer names why a packet ended (it mounts
        tracefs and opens an instance of its own)."""
        tracker = start_fates(self.path)
        if tracker is None:
            return
        if self.stopping.is_set():
            tracker.stop()
            return
        self._fates = tracker
        if tracker.note:
            self.screen.post_message(FatesNote(tracker.note))

    def _poll_loop(self) -> None:
        worker = get_current_worker()
        while not self.stopping.wait(self.poll_s):
            if worker.is_cancelled:
                return
            # backpressure: one batch in flight; the engine buffers meanwhile (bounded)
            if not self._handled.wait(0.5):
                continue
            session, gen = self.session, self.gen
            if session is None:
                continue
            try:
                batch = annotate(self._fates, session.poll())
            except Exception as exc:
                failed = SessionFailed(gen, f"capture poll failed: {one_line(exc)}", False)
                self.screen.post_message(failed)
                return
            self._handled.clear()
            self.screen.post_message(BatchReady(gen, batch))

    def _check_lease(self, checker: LeaseChecker, key: str, tx: DhcpTransaction) -> None:
        try:
            result = checker(tx)
        except Exception as exc:
            result = LeaseCheck("unchecked", one_line(exc))
        self.screen.post_message(LeaseChecked(key, result))

    def _export(self, path: str, rows: list[PacketRow]) -> None:
        from kvmtui.capture.pcapstream import write_rows

        spool = self._spool
        try:
            target = Path(path).expanduser()
            if spool is not None and spool.frames:
                n = spool.export(str(target))
            else:
                n = write_rows(str(target), rows)
        except Exception as exc:
            self.screen.post_message(ExportDone(path, 0, len(rows), one_line(exc)))
            return
        whole = spool is not None and n > 0
        self.screen.post_message(ExportDone(str(target), n, len(rows), whole=whole))
