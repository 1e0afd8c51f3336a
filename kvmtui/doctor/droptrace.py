"""Where and why the kernel freed a path's packets: ``skb:kfree_skb`` read through tracefs.

The tracer owns a tracefs instance of its own (``instances/kvmtui-<pid>-<n>``), never the global
buffer. It enables three events, each filtered in the kernel:

- ``skb:kfree_skb`` with a real drop reason (not ``NOT_SPECIFIED``, not consumed) and an
  IPv4/ARP/IPv6 protocol;
- ``net:netif_receive_skb`` and ``net:net_dev_xmit`` on the path's device names only, so the
  tracer knows on which of OUR devices an skb was last seen (skbaddr continuity).

A drop is kept only for an skb seen on one of the path's devices. Under a flood with nothing
dropped the sightings (one event per packet per device) are what costs: above
``FLOOD_EVENTS_S`` a second, with no drop event for ``QUIET_S``, they are paused (kfree_skb
stays on) and resumed by the next drop event, so the drops that follow it are placed again;
``paused`` counts the pauses. Tracepoints see every network
namespace (two labs both have ``vnet0``): a drop is tied to a packet of ours by
:meth:`Drop.matches`, against a frame our own AF_PACKET sockets saw on that device (same length,
same moment).

The instance goes away on every exit path: :meth:`DropTracer.stop`, ``atexit``, SIGINT/SIGTERM/
SIGHUP handlers chained to the previous ones, a crash of the reader thread; a stale instance of a
dead process is removed on the next start.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from kvmtui.core.procs import pid_alive
from kvmtui.doctor.reasons import BENIGN, BENIGN_AT, NOT_DROPS

TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
INSTANCE_PREFIX = "kvmtui-"
ETH_HLEN = 14
PROTOCOLS = (0x0800, 0x0806, 0x86DD)
_DEV_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_KINDS = frozenset({"kfree_skb", "netif_receive_skb", "net_dev_xmit"})
_KV_RE = re.compile(r"(\w+)[=:] ?(\S+)")
SLACK_NS = 500_000  # a socket's timestamp and the tracepoint's: about 20 us apart here
_CHAIN_GAP_NS = 100_000_000  # sightings further apart are of different skbs
_SEEN_MAX = 20_000  # skbs remembered (oldest forgotten first)
_SEEN_AGE_NS = 3_000_000_000  # a drop this long after the last sighting is not that skb's
FLOOD_EVENTS_S = 20_000  # sightings a second above which, with no drop, they are paused
QUIET_S = 1.0  # ... when no drop event came for this long
_SIGHTINGS = ("net/netif_receive_skb", "net/net_dev_xmit")


class TraceUnavailable(RuntimeError):
    """Drop tracing cannot run here; ``str()`` is one line for the user."""


@dataclass(frozen=True, slots=True)
class Seen:
    dev: str
    length: int  # skb->len as the event reports it
    time_ns: int  # wall clock (CLOCK_REALTIME), like the capture's timestamps
    xmit: bool


@dataclass(frozen=True, slots=True)
class Drop:
    """One packet the kernel freed after it was seen on a device of the path."""

    time_ns: int  # wall clock
    reason: str  # kernel name without SKB_DROP_REASON_
    location: str  # function, without +0x offset
    protocol: int
    seen: tuple[Seen, ...]  # sightings of this skb on the path's devices, oldest first

    @property
    def hop(self) -> str:
        return self.seen[-1].dev

    def matches(self, dev: str, wire_len: int, time_ns: int, slack_ns: int = SLACK_NS) -> bool:
        """Did this skb cross ``dev`` as the frame our socket saw (``wire_len`` bytes at
        ``time_ns``)? Received skbs report the length without the Ethernet header."""
        for s in self.seen:
            if s.dev != dev or abs(s.time_ns - time_ns) > slack_ns:
                continue
            if s.length in (wire_len, wire_len - ETH_HLEN):
                return True
        return False

    def matches_all(self, sightings: Sequence[tuple[str, int, int]]) -> bool:
        """Every sighting of this skb on a device in ``sightings`` ((dev, wire_len, time_ns),
        what our sockets saw) is one of them, and there is at least one: a packet of another
        namespace on a same-named device would have to coincide on every device at once."""
        devs = {d for d, _, _ in sightings}
        mine = [s for s in self.seen if s.dev in devs]
        if not mine:
            return False
        return all(
            any(
                d == s.dev and abs(s.time_ns - t) <= SLACK_NS and s.length in (n, n - ETH_HLEN)
                for d, n, t in sightings
            )
            for s in mine
        )


# -- tracefs ---------------------------------------------------------------------------------


def tracefs_root(mount: bool = True) -> str | None:
    """The tracefs directory that has ``instances``; mount tracefs at its usual place if absent
    (``ip netns exec`` gives a fresh /sys without it)."""
    for d in TRACEFS:
        if os.path.isdir(os.path.join(d, "instances")):
            return d
    if mount and os.geteuid() == 0 and os.path.isdir(TRACEFS[0]):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["mount", "-t", "tracefs", "nodev", TRACEFS[0]],
                capture_output=True,
                timeout=5,
                check=False,
            )
        if os.path.isdir(os.path.join(TRACEFS[0], "instances")):
            return TRACEFS[0]
    return None


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def remove_instance(inst: str) -> bool:
    """Turn an instance off and remove it; True when it is gone."""
    for _ in range(50):
        with contextlib.suppress(OSError):
            _write(os.path.join(inst, "tracing_on"), "0")
        with contextlib.suppress(OSError):
            _write(os.path.join(inst, "events", "enable"), "0")
        try:
            os.rmdir(inst)
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return False
        time.sleep(0.02)
    return False


def kvmtui_instances(root: str) -> list[str]:
    try:
        names = os.listdir(os.path.join(root, "instances"))
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(INSTANCE_PREFIX))


def remove_stale(root: str) -> list[str]:
    """Remove kvmtui instances whose process is dead; their names."""
    gone = []
    for name in kvmtui_instances(root):
        m = re.match(rf"{INSTANCE_PREFIX}(\d+)-", name)
        dead = m is not None and not pid_alive(int(m.group(1)))
        if dead and remove_instance(os.path.join(root, "instances", name)):
            gone.append(name)
    return gone


def reason_codes(root: str) -> dict[str, int]:
    """The kernel's drop-reason numbers by name, from the event's own format (they change
    between kernel versions)."""
    try:
        with open(os.path.join(root, "events", "skb", "kfree_skb", "format")) as f:
            fmt = f.read()
    except OSError:
        return {}
    return {n: int(v) for v, n in re.findall(r'\{ (\d+), "(\w+)" \}', fmt)}


# -- exit paths ------------------------------------------------------------------------------

_live: set[DropTracer] = set()
_live_lock = threading.Lock()
_atexit_done = False
_signals_done = False
_counter = itertools.count(1)


def _cleanup_all() -> None:
    with _live_lock:
        tracers = list(_live)
    for t in tracers:
        t.stop()


def _chain(signum: int, previous: Any) -> Any:
    def handler(sig: int, frame: FrameType | None) -> None:
        _cleanup_all()
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

    return handler


def install_exit_hooks() -> None:
    """atexit, and SIGINT/SIGTERM/SIGHUP handlers chained to the previous ones (signals only
    from the main thread: call this there before starting tracers in worker threads)."""
    global _atexit_done, _signals_done
    if not _atexit_done:
        _atexit_done = True
        atexit.register(_cleanup_all)
    if _signals_done or threading.current_thread() is not threading.main_thread():
        return  # signals can only be set from the main thread: atexit and finally remain
    _signals_done = True
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(OSError, ValueError):
            prev = signal.getsignal(sig)
            if prev == signal.SIG_IGN:
                continue
            signal.signal(sig, _chain(sig, prev))


# -- the tracer ------------------------------------------------------------------------------


def _num(v: str) -> int:
    try:
        return int(v, 0)
    except ValueError:
        return 0


class DropTracer:
    """Kernel drops of skbs seen on ``devices``. ``start()``, ``drops()``, ``stop()``."""

    def __init__(self, devices: Sequence[str], *, max_drops: int = 10_000) -> None:
        self.devices = tuple(dict.fromkeys(d for d in devices if d and _DEV_RE.match(d)))
        self.inst: str | None = None
        self.error: str | None = None  # the reader thread's crash, one line
        self.events = 0  # trace lines read
        self.cpu_s = 0.0  # the reader thread's CPU time
        self._drops: deque[Drop] = deque(maxlen=max_drops)
        self._seen: OrderedDict[str, tuple[Seen, ...]] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._drained = 0.0  # monotonic time the pipe was last found empty
        self._off_ns = 0
        self.paused = 0  # times the sightings were paused under a flood without drops
        self._sightings_on = True
        self._want_sightings = True
        self._last_drop = 0.0  # monotonic time of the last kfree_skb event
        self._win_t0 = 0.0
        self._win_sightings = 0

    def __enter__(self) -> DropTracer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _filters(self, root: str) -> dict[str, str]:
        protos = " || ".join(f"protocol == {p}" for p in PROTOCOLS)
        names = " || ".join(f'name == "{d}"' for d in self.devices)
        codes = reason_codes(root)
        skip = "".join(f" && reason != {codes[n]}" for n in sorted(BENIGN) if n in codes)
        return {
            "skb/kfree_skb": f"reason > 2{skip} && ({protos})",
            "net/netif_receive_skb": names,
            "net/net_dev_xmit": names,
        }

    def start(self) -> DropTracer:
        if not self.devices:
            raise TraceUnavailable("drop tracing: the path has no device to watch")
        if os.geteuid() != 0:
            raise TraceUnavailable("drop tracing needs root (tracefs): kernel drops not shown")
        root = tracefs_root()
        if root is None:
            raise TraceUnavailable("drop tracing: no tracefs on this host: kernel drops not shown")
        remove_stale(root)
        install_exit_hooks()
        name = f"{INSTANCE_PREFIX}{os.getpid()}-{next(_counter)}-{int(time.time())}"
        inst = os.path.join(root, "instances", name)
        try:
            os.mkdir(inst)
        except OSError as exc:
            raise TraceUnavailable(
                f"drop tracing: cannot create a tracefs instance: {exc.strerror or exc}"
            ) from None
        self.inst = inst
        with _live_lock:
            _live.add(self)
        try:
            self._setup(inst)
        except OSError as exc:
            self.stop()
            raise TraceUnavailable(
                f"drop tracing: the kernel refused the trace events: {exc.strerror or exc}"
            ) from None
        self._thread = threading.Thread(target=self._run, name="kvmtui-droptrace", daemon=True)
        self._thread.start()
        return self

    def _setup(self, inst: str) -> None:
        _write(os.path.join(inst, "tracing_on"), "0")
        with contextlib.suppress(OSError):
            _write(os.path.join(inst, "trace_clock"), "mono")
        with contextlib.suppress(OSError):
            _write(os.path.join(inst, "buffer_size_kb"), "1024")
        root = os.path.dirname(os.path.dirname(inst))
        for ev, flt in self._filters(root).items():
            d = os.path.join(inst, "events", ev)
            _write(os.path.join(d, "filter"), flt)
            _write(os.path.join(d, "enable"), "1")
        self._off_ns = time.time_ns() - time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self._fd = os.open(os.path.join(inst, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
        _write(os.path.join(inst, "tracing_on"), "1")

    def stop(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            t.join(2.0)
        self._release()

    def _release(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
            inst, self.inst = self.inst, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if inst is not None:
            remove_instance(inst)
        with _live_lock:
            _live.discard(self)

    def drops(self) -> list[Drop]:
        with self._lock:
            return list(self._drops)

    def sync(self, timeout: float = 0.5) -> None:
        """Wait (bounded) until the reader has read everything the kernel wrote until now."""
        asked = time.monotonic()
        while self.running and self._drained < asked and time.monotonic() - asked < timeout:
            time.sleep(0.01)

    def _set_sightings(self, on: bool) -> None:
        inst = self.inst
        if inst is None or on == self._sightings_on:
            return
        for ev in _SIGHTINGS:
            with contextlib.suppress(OSError):
                _write(os.path.join(inst, "events", ev, "enable"), "1" if on else "0")
        self._sightings_on = on
        if not on:
            self.paused += 1
            self._seen.clear()  # what was seen before the pause cannot be continued

    def _pace(self) -> None:
        """Pause the sightings under a flood with no drop; resume at the next drop event."""
        now = time.monotonic()
        if self._want_sightings and not self._sightings_on:
            self._set_sightings(True)
        if now - self._win_t0 < 0.2:
            return
        rate = self._win_sightings / (now - self._win_t0) if self._win_t0 else 0.0
        self._win_t0, self._win_sightings = now, 0
        if self._sightings_on and rate > FLOOD_EVENTS_S and now - self._last_drop > QUIET_S:
            self._want_sightings = False
            self._set_sightings(False)

    def _run(self) -> None:
        t0 = time.thread_time()
        rest = b""
        try:
            while not self._stop.is_set():
                self._pace()
                fd = self._fd
                if fd is None:
                    break
                r, _, _ = select.select([fd], [], [], 0.1)
                if not r:
                    self._drained = time.monotonic()
                    continue
                try:
                    chunk = os.read(fd, 1 << 20)
                except BlockingIOError:
                    self._drained = time.monotonic()
                    continue
                if not chunk:
                    self._drained = time.monotonic()
                    continue
                # the wall clock may be stepped or slewed: keep mono -> wall current
                self._off_ns = time.time_ns() - time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    self._line(line.decode("ascii", "replace"))
                self.cpu_s = time.thread_time() - t0
        except Exception as exc:  # the reader crashed: say so, and leave nothing in tracefs
            self.error = f"drop tracing stopped: {type(exc).__name__}: {exc}"
        finally:
            self.cpu_s = time.thread_time() - t0
            self._release()

    def _line(self, line: str) -> None:
        # "<task>-<pid> [cpu] flags  123.456789: netif_receive_skb: dev=p0 skbaddr=.. len=46"
        parts = line.split(": ", 2)
        if len(parts) != 3:
            return
        kind = parts[1]
        if kind not in _KINDS:
            return
        self.events += 1
        sec, _, frac = parts[0].rpartition(" ")[2].partition(".")
        try:
            ts = int(sec) * 1_000_000_000 + int(frac) * 10 ** (9 - len(frac)) + self._off_ns
        except ValueError:
            return
        rest = parts[2]
        if kind != "kfree_skb":  # the hot path: one event per packet per device
            self._win_sightings += 1
            f = rest.split()
            if len(f) < 3:
                return
            self._sighting(f[1][8:], f[0][4:], _num(f[2][4:]), ts, kind == "net_dev_xmit")
            return
        kv = dict(_KV_RE.findall(rest))
        reason = kv.get("reason", "")
        if reason in NOT_DROPS or reason in BENIGN:
            return
        loc = kv.get("location", "?").split("+", 1)[0]
        if (reason, loc) in BENIGN_AT:
            return
        self._last_drop = time.monotonic()
        self._want_sightings = True  # if they were paused: the drops after this one are placed
        seen = self._seen.pop(kv.get("skbaddr", ""), None)
        if not seen or ts - seen[-1].time_ns > _SEEN_AGE_NS:
            return
        drop = Drop(ts, reason, loc, _num(kv.get("protocol", "0")), seen)
        with self._lock:
            self._drops.append(drop)

    def _sighting(self, skb: str, dev: str, length: int, ts: int, xmit: bool) -> None:
        s = Seen(dev, length, ts, xmit)
        prev = self._seen.pop(skb, ())
        # a recycled address is another skb (its normal free is not traced): one crosses the
        # host in micro- to milliseconds, and is received on one device only once
        if prev and (
            ts - prev[-1].time_ns > _CHAIN_GAP_NS
            or (not xmit and any(p.dev == dev and not p.xmit for p in prev))
        ):
            prev = ()
        self._seen[skb] = (*prev[-7:], s)
        while len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)
