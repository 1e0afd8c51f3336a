"""Live changes of a network namespace from rtnetlink multicast groups.

:class:`NetlinkWatcher` runs one thread with a netlink socket (opened inside the namespace)
subscribed to the link, neighbour, address and route groups. It does not decode the messages
beyond their type: it tells its client *what kind* of state changed, so the client re-reads
only that (``"link"``, ``"fdb"``, ``"neigh"``, ``"addr"``, ``"route"``). FDB changes arrive as
``AF_BRIDGE`` ``RTM_NEWNEIGH``/``RTM_DELNEIGH`` on the neighbour group, ARP/NDP ones as
``AF_INET``/``AF_INET6`` on the same group.

Bursts are coalesced: a callback fires once the socket has been quiet for ``quiet_s`` (5 ms)
or ``window_s`` (40 ms) after the first pending change, whichever comes first, so a thousand
FDB changes give a handful of callbacks and a single change is reported within a few ms. When
the kernel drops messages because the socket overran (``ENOBUFS``), the watcher reports that
everything changed and carries on.

With ``on_fdb`` the watcher also decodes the FDB events themselves and hands them over, in
order, just before the ``on_change`` of the same batch: a client holding a big FDB patches it
(:func:`kvmtui.core.netlink.apply_fdb_changes`) instead of re-dumping it. A batch that lost
messages to an overrun is not handed over; its ``on_change`` says everything changed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import select
import socket
import threading
import time
from collections.abc import Callable

from kvmtui.core import nlfast, nlsock
from kvmtui.core.nlfast import FdbChange, NetlinkError, NlConn, NsHandle

__all__ = ["ALL_KINDS", "FdbChange", "NetlinkWatcher", "message_kinds"]

log = logging.getLogger(__name__)

RTMGRP_LINK = 0x1
RTMGRP_NEIGH = 0x4
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
GROUPS = (
    RTMGRP_LINK
    | RTMGRP_NEIGH
    | RTMGRP_IPV4_IFADDR
    | RTMGRP_IPV4_ROUTE
    | RTMGRP_IPV6_IFADDR
    | RTMGRP_IPV6_ROUTE
)

ALL_KINDS: frozenset[str] = frozenset({"link", "fdb", "neigh", "addr", "route"})

_TYPE_KIND = {
    nlsock.RTM_NEWLINK: "link",
    nlsock.RTM_DELLINK: "link",
    nlsock.RTM_NEWADDR: "addr",
    nlsock.RTM_DELADDR: "addr",
    nlsock.RTM_NEWROUTE: "route",
    nlsock.RTM_DELROUTE: "route",
}
_NEIGH_TYPES = (nlsock.RTM_NEWNEIGH, nlsock.RTM_DELNEIGH)


def message_kinds(data: bytes, into: set[str]) -> None:
    """Add to ``into`` the kinds of change the netlink messages in ``data`` carry."""
    with contextlib.suppress(nlsock.NetlinkError):  # a malformed tail: keep what came before
        for mtype, _fl, _seq, pos, end in nlsock.walk(data):
            if mtype in _NEIGH_TYPES:
                if pos + 17 <= end:
                    into.add("fdb" if data[pos + 16] == nlsock.AF_BRIDGE else "neigh")
            else:
                kind = _TYPE_KIND.get(mtype)
                if kind is not None:
                    into.add(kind)


class NetlinkWatcher:
    """Calls ``on_change(kinds)`` from its own thread when the namespace's state changes."""

    def __init__(
        self,
        netns: str | None,
        on_change: Callable[[frozenset[str]], None],
        *,
        quiet_s: float = 0.005,
        window_s: float = 0.04,
        rcvbuf: int = 4 << 20,
        on_fdb: Callable[[tuple[FdbChange, ...]], None] | None = None,
    ) -> None:
        self.netns = netns
        self.on_change = on_change
        self.quiet_s = quiet_s
        self.window_s = window_s
        self.rcvbuf = rcvbuf
        self.on_fdb = on_fdb
        self._names: dict[int, str] = {}  # ifindex -> name, kept only for on_fdb
        self._fdb: list[FdbChange] = []
        self._fdb_lost = False
        self.overruns = 0  # ENOBUFS seen
        self.callbacks = 0
        self._sock: socket.socket | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._close_in_thread = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Subscribe (inside the namespace) and start the thread. Changes made after this
        returns are reported. Raises :class:`NetlinkError` with a one-line message."""
        if self._thread is not None:
            return
        with NsHandle(self.netns) as ns:
            try:
                with ns.entered():
                    sock = nlsock.nl_socket(groups=GROUPS, rcvbuf=self.rcvbuf)
            except OSError as exc:
                raise NetlinkError(
                    f"cannot subscribe to netlink events: {exc.strerror or exc}"
                ) from None
            if self.on_fdb is not None:
                # names of ports and bridges, then kept current from link events
                try:
                    with NlConn.open(ns) as conn:
                        self._names = {rl.index: rl.name for rl in nlfast.dump_links(conn)}
                except BaseException:
                    sock.close()
                    raise
        sock.setblocking(False)
        self._sock = sock
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"nlwatch-{self.netns or 'self'}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the socket (idempotent; safe from the callback)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if thread is threading.current_thread():
            self._close_in_thread = True  # called from on_change: _run closes on its way out
        else:
            thread.join(timeout)
            if thread.is_alive():  # stuck in on_change: it closes on its way out
                self._close_in_thread = True
            else:
                self._close()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                os.close(fd)
        self._wake_r = self._wake_w = None
        self._thread = None

    def __enter__(self) -> NetlinkWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _drain(self, sock: socket.socket, pending: set[str]) -> bool:
        """Read everything queued; True if anything was read."""
        got = False
        while True:
            try:
                data = sock.recv(nlsock.RECV_SIZE)
            except BlockingIOError:
                return got
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    pending.update(ALL_KINDS)
                    self._fdb_lost = True
                    got = True
                    continue
                raise
            got = True
            message_kinds(data, pending)
            if self.on_fdb is not None:
                self._decode_fdb(data)

    def _decode_fdb(self, data: bytes) -> None:
        """Collect FDB changes, and follow link names so they can be named."""
        with contextlib.suppress(nlsock.NetlinkError):  # a malformed tail ends the batch
            self._decode_messages(data)

    def _decode_messages(self, data: bytes) -> None:
        now = time.time_ns()  # read now; emitted up to window_s later, coalesced
        for mtype, _fl, _seq, pos, end in nlsock.walk(data):
            if mtype in _NEIGH_TYPES and data[pos + 16] == nlsock.AF_BRIDGE:
                raw = nlfast.decode_fdb(data, pos + 16, end)
                if raw is not None:
                    rec = nlfast.fdb_record(raw, self._names)
                    self._fdb.append(FdbChange(mtype == nlsock.RTM_DELNEIGH, rec, now))
            elif mtype == nlsock.RTM_NEWLINK:
                index, name = nlfast.link_name_of(data, pos + 16, end)
                if name:
                    self._names[index] = name
            elif mtype == nlsock.RTM_DELLINK:
                index, _name = nlfast.link_name_of(data, pos + 16, end)
                self._names.pop(index, None)

    def _emit(self, pending: set[str]) -> None:
        self.callbacks += 1
        changes, lost = tuple(self._fdb), self._fdb_lost
        self._fdb.clear()
        self._fdb_lost = False
        if self.on_fdb is not None and changes and not lost:
            try:
                self.on_fdb(changes)
            except Exception:
                log.exception("netlink watcher FDB callback failed")
        try:
            self.on_change(frozenset(pending))
        except Exception:
            log.exception("netlink watcher callback failed")

    def _run(self) -> None:
        sock = self._sock
        wake = self._wake_r
        assert sock is not None and wake is not None
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(wake, select.POLLIN)
        pending: set[str] = set()
        first = last = 0.0
        try:
            while not self._stopping.is_set():
                timeout_ms: float | None = None
                if pending:
                    due = min(first + self.window_s, last + self.quiet_s)
                    timeout_ms = max(0, math.ceil((due - time.monotonic()) * 1000))
                ready = poller.poll(timeout_ms)
                if self._stopping.is_set():
                    break
                now = time.monotonic()
                if any(fd == sock.fileno() for fd, _ev in ready):
                    had = bool(pending)
                    if self._drain(sock, pending) and pending:
                        if not had:
                            first = now
                        last = now
                if pending and (now >= first + self.window_s or now >= last + self.quiet_s):
                    kinds, pending = pending, set()
                    self._emit(kinds)
        except Exception:
            log.exception("netlink watcher stopped")
        finally:
            if self._close_in_thread:
                self._close()
