"""A recorded host: ``kvmtui record FILE`` writes it, ``kvmtui --replay FILE`` reads it.

The file is a pcapng (so ``tshark -r FILE`` and Wireshark open it as they are) whose host model
travels in pcapng Custom Blocks (type 0x00000BAD, "not to be copied", Private Enterprise Number
32473, the IANA number for documentation). Readers that do not know them skip them. Each custom
block holds one UTF-8 JSON object (zero-padded to 4 bytes)::

    {"kvmtui": "recording", "version": 1, "started": T0}        first block, the header
    {"t": SECONDS, "kind": "snapshot", "snapshot": {...}}       the host at T0 + SECONDS

``snapshot`` is the ``inventory --json`` document (:mod:`kvmtui.core.jsonout`); the first one is
at ``t`` 0, the next ones are the change events LiveHost.watch delivered, in time order. Frames of
the recorded VM's hops, when there are any, are ordinary Interface Description and Enhanced Packet
Blocks (one interface per hop) in the same file.

:class:`RecordedHost` is a :class:`~kvmtui.core.source.SnapshotSource` that plays the events at
recorded speed, with :meth:`~RecordedHost.pause`, :meth:`~RecordedHost.resume` and
:meth:`~RecordedHost.seek` for the explorer. It needs no root and no libvirt.
"""

from __future__ import annotations

import json
import os
import stat
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

from kvmtui.core.jsondecode import DecodeError, decode_snapshot
from kvmtui.core.jsonout import snapshot_json
from kvmtui.core.model import HostSnapshot, LinkStats
from kvmtui.core.source import HostUnavailable

VERSION = 1
PEN = 32473
CUSTOM_NOCOPY = 0x40000BAD
SHB = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D


# --- writing ---------------------------------------------------------------------------------


def create_file(path: str, overwrite: bool = False) -> BinaryIO:
    """Open ``path`` for a new recording: never through a symlink, mode 0600; an existing path
    only with ``overwrite`` and only when it is a regular file. Raises HostUnavailable(code 2)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    if overwrite:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            flags |= os.O_EXCL
        except OSError as e:
            raise HostUnavailable(f"cannot write {path}: {e.strerror}", 2) from None
        else:
            if not stat.S_ISREG(st.st_mode):
                raise HostUnavailable(f"{path} exists and is not a regular file: refused", 2)
            flags |= os.O_TRUNC
    else:
        flags |= os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise HostUnavailable(f"{path} exists (use --overwrite to replace it)", 2) from None
    except OSError as e:
        raise HostUnavailable(f"cannot write {path}: {e.strerror}", 2) from None
    return os.fdopen(fd, "wb")


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def shb_block() -> bytes:
    app = b"kvmtui recording"
    opts = struct.pack("<HH", 4, len(app)) + app + b"\0" * ((-len(app)) % 4) + b"\0\0\0\0"
    return _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts)


def custom_block(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    return _block(CUSTOM_NOCOPY, struct.pack("<I", PEN) + data + b"\0" * ((-len(data)) % 4))


class RecordingWriter:
    """Writes the header, then snapshots as they come (flushed each time)."""

    def __init__(self, f: BinaryIO, started: float) -> None:
        self.f = f
        self.started = started
        self.count = 0
        f.write(shb_block())
        f.write(custom_block({"kvmtui": "recording", "version": VERSION, "started": started}))
        f.flush()

    def snapshot(self, snap: HostSnapshot, at: float | None = None) -> None:
        t = max(0.0, (time.time() if at is None else at) - self.started)
        body = {"t": round(t, 6), "kind": "snapshot", "snapshot": snapshot_json(snap)}
        self.f.write(custom_block(body))
        self.f.flush()
        self.count += 1

    def raw(self, block: bytes) -> None:
        """An IDB or EPB (frames), written as is."""
        self.f.write(block)

    def close(self) -> None:
        self.f.close()


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    started: float
    events: tuple[tuple[float, HostSnapshot], ...]  # (seconds from start, snapshot)
    frames: int  # Enhanced Packet Blocks in the file

    @property
    def duration(self) -> float:
        return self.events[-1][0] if self.events else 0.0


def _bad(path: str, why: str) -> HostUnavailable:
    return HostUnavailable(f"{path}: not a kvmtui recording ({why})", 2)


def read_recording(path: str) -> Recording:
    """Parse a recording; a truncated, foreign or unreadable file raises HostUnavailable(2)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise HostUnavailable(f"cannot read {path}: {e.strerror}", 2) from None
    if data.lstrip()[:1] == b"{":
        return _inventory_document(path, data)
    if len(data) < 12 or struct.unpack_from("<I", data, 0)[0] != SHB:
        raise _bad(path, "not a pcapng file")
    if struct.unpack_from("<I", data, 8)[0] != BYTE_ORDER_MAGIC:
        raise _bad(path, "big-endian or damaged pcapng")
    pos = 0
    header: dict[str, Any] | None = None
    events: list[tuple[float, HostSnapshot]] = []
    frames = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise _bad(path, f"truncated at byte {pos}")
        btype, total = struct.unpack_from("<II", data, pos)
        if total < 12 or total % 4 or pos + total > len(data):
            raise _bad(path, f"truncated or damaged block at byte {pos}")
        if struct.unpack_from("<I", data, pos + total - 4)[0] != total:
            raise _bad(path, f"damaged block at byte {pos}")
        body = data[pos + 8 : pos + total - 4]
        pos += total
        if btype == 6:
            frames += 1
        if btype not in (CUSTOM_NOCOPY, 0x00000BAD) or len(body) < 4:
            continue
        if struct.unpack_from("<I", body, 0)[0] != PEN:
            continue
        try:
            obj = json.loads(body[4:].rstrip(b"\0"))
        except ValueError:
            raise _bad(path, f"unreadable model block before byte {pos}") from None
        if header is None:
            if not isinstance(obj, dict) or obj.get("kvmtui") != "recording":
                raise _bad(path, "no kvmtui header")
            if obj.get("version") != VERSION:
                raise HostUnavailable(
                    f"{path}: recording version {obj.get('version')!r}, "
                    f"this kvmtui reads version {VERSION}",
                    2,
                )
            header = obj
            continue
        if not isinstance(obj, dict) or obj.get("kind") != "snapshot":
            continue
        try:
            events.append((float(obj["t"]), decode_snapshot(obj["snapshot"])))
        except (DecodeError, KeyError, TypeError, ValueError) as e:
            raise _bad(path, f"bad snapshot: {e}") from None
    if header is None:
        raise _bad(path, "a pcapng without a kvmtui model")
    if not events:
        raise _bad(path, "no snapshot in it")
    events.sort(key=lambda e: e[0])
    return Recording(float(header.get("started", 0.0)), tuple(events), frames)


def _inventory_document(path: str, data: bytes) -> Recording:
    """An ``inventory --json`` document as a recording of one moment (the fixtures of host shapes
    in tests/fixtures are such documents)."""
    try:
        doc = json.loads(data)
        snap = decode_snapshot(doc)
    except (DecodeError, ValueError) as e:
        raise HostUnavailable(f"{path}: not a kvmtui inventory document ({e})", 2) from None
    return Recording(snap.taken_at, ((0.0, snap),), 0)


class RecordedHost:
    """Plays a recording as a host: ``snapshot()`` is the host at the playhead, ``watch()``
    delivers the recorded changes at recorded speed. ``pause``/``resume``/``seek`` move the
    playhead (thread-safe; a seek delivers the snapshot at the new position at once)."""

    def __init__(self, recording: Recording, path: str = "") -> None:
        self.recording = recording
        self.path = path
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)
        self._pos = 0.0  # playhead, seconds from start, while paused or at _t0
        self._t0 = time.monotonic()  # monotonic time when playback was at _pos
        self._paused = False

    # --- playback control (the explorer's API) ---
    @property
    def duration(self) -> float:
        return self.recording.duration

    @property
    def paused(self) -> bool:
        return self._paused

    def position(self) -> float:
        """Seconds from the start of the recording, 0 .. duration."""
        with self._lock:
            return self._position()

    def _position(self) -> float:
        if self._paused:
            return self._pos
        return min(self.duration, self._pos + time.monotonic() - self._t0)

    def pause(self) -> None:
        with self._lock:
            self._pos, self._paused = self._position(), True
            self._moved.notify_all()

    def resume(self) -> None:
        with self._lock:
            self._t0, self._paused = time.monotonic(), False
            self._moved.notify_all()

    def seek(self, seconds: float) -> None:
        """Move the playhead (clamped to 0 .. duration)."""
        with self._lock:
            self._pos = max(0.0, min(self.duration, float(seconds)))
            self._t0 = time.monotonic()
            self._moved.notify_all()

    def _index_at(self, pos: float) -> int:
        i = 0
        for k, (t, _) in enumerate(self.recording.events):
            if t <= pos:
                i = k
        return i

    # --- SnapshotSource ---
    def snapshot(self) -> HostSnapshot:
        with self._lock:
            return self.recording.events[self._index_at(self._position())][1]

    def watch(self, on_snapshot: Callable[[HostSnapshot], None], stop: threading.Event) -> None:
        shown = -1
        events = self.recording.events
        while not stop.is_set():
            with self._lock:
                i = self._index_at(self._position())
                nxt = events[i + 1][0] if i + 1 < len(events) else None
                wait = 0.2 if self._paused or nxt is None else nxt - self._position()
            if i != shown:
                shown = i
                on_snapshot(events[i][1])
            with self._lock:
                self._moved.wait(timeout=max(0.001, min(wait, 0.2)))

    def counters(self) -> Mapping[str, LinkStats]:
        return {lk.name: lk.stats for lk in self.snapshot().links}

    def close(self) -> None:
        pass


def open_recording(path: str) -> RecordedHost:
    return RecordedHost(read_recording(path), path)
