"""Every frame of a TUI capture session, kept on disk for the export (issue 13).

The capture view shows rows and keeps its last 10,000 for filtering; what an export writes is
the whole session: a :class:`SessionSpool` is the engine's sink (every frame each hop's filter
passed, correlated or not, rows named in the comments), a pcapng in the user's private
captures folder (``$XDG_DATA_HOME/kvmtui/captures``, 0700) named ``.session-<pid>-<n>.pcapng``,
mode 0600. An export copies it (through ``open_export``: no symlink followed, no file
overwritten unasked). It is removed when the view closes, and a dead process's spool on the
next start. Bounded: past ``max_bytes`` it stops taking frames and says so.

Several sessions feed one spool in turn (a filter change starts a new session while the old
one's thread may still be stopping), so every call is under one lock.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import threading
from collections.abc import Iterable, Mapping

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.pcapng import export_dir, open_export
from kvmtui.capture.pcapstream import PcapngStream
from kvmtui.capture.ring import RawPacket
from kvmtui.core.procs import pid_alive

SPOOL_MAX_BYTES = 512_000_000
_NAME = re.compile(r"^\.session-(\d+)-\d+\.pcapng$")
_counter = itertools.count(1)


def remove_stale(folder: str) -> list[str]:
    """Spools of processes that are gone (a crash, a kill -9); returns what was removed."""
    gone = []
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            m = _NAME.match(name)
            if m and not pid_alive(int(m.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
                    gone.append(name)
    return gone


class SessionSpool:
    def __init__(self, folder: str | None = None, max_bytes: int = SPOOL_MAX_BYTES) -> None:
        self.folder = folder or export_dir()
        remove_stale(self.folder)
        self.path = os.path.join(self.folder, f".session-{os.getpid()}-{next(_counter)}.pcapng")
        self.max_bytes = max_bytes
        self.full = False  # past max_bytes: frames are no longer taken
        self._lock = threading.Lock()
        self._stream: PcapngStream | None = PcapngStream(self.path)

    @property
    def frames(self) -> int:
        """Frames taken so far (written or about to be)."""
        s = self._stream
        return 0 if s is None else s.frames + s.held

    # -- the engine's sink (its capture thread) ------------------------------------------------

    def add_frames(self, frames: list[RawPacket], hops: Mapping[int, tuple[str, str]]) -> None:
        with self._lock:
            s = self._stream
            if s is None or self.full:
                return
            s.add_frames(frames, hops)
            if s.size >= self.max_bytes:
                self.full = True
                s.sync()

    def write_rows(self, rows: Iterable[PacketRow]) -> None:
        with self._lock:
            if self._stream is not None and not self.full:
                self._stream.write_rows(rows)

    # -- the view's side -----------------------------------------------------------------------

    def export(self, target: str, overwrite: bool = False) -> int:
        """Copy every frame so far to ``target``; returns how many. The frames still waiting
        for their row's name go out now (unnamed if their row had not come yet)."""
        with self._lock:
            s = self._stream
            if s is None:
                return 0
            s.sync()
            if s.error:
                raise OSError(s.error)
            n, length = s.frames, s.durable
        # the copy runs outside the lock (the capture thread goes on appending): up to the
        # length that held those n frames, whole blocks
        with open(self.path, "rb") as src, open_export(target, overwrite) as dst:
            left = length
            while left > 0:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                left -= len(chunk)
        return n

    def close(self) -> None:
        """Stop and remove the spool (idempotent)."""
        with self._lock:
            s, self._stream = self._stream, None
        if s is not None:
            with contextlib.suppress(OSError):
                s.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
