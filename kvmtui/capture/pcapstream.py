"""A pcapng file written while the capture runs: what ``trace --pcap`` streams to.

Every sighting of every correlated row goes out as it is polled (one interface block per hop,
the row named in the packet's comment), flushed at least once a second, so Ctrl-C, SIGTERM, an
SSH drop (SIGHUP) or a kill leaves a file that Wireshark reads up to its last second. Blocks are
written whole: on a full disk the file is cut back to the last complete block and writing stops
with one line, never a packet half written. ``max_bytes``/``files`` rotate like tcpdump's
``-C``/``-W``: FILE, FILE1, FILE2, ..., and with ``files`` a ring that reuses its own names.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterable

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.pcapng import ExportRefused, epb, idb, open_export, shb

FLUSH_EVERY_S = 1.0


class PcapngStream:
    def __init__(
        self,
        path: str,
        overwrite: bool = False,
        max_bytes: int | None = None,
        files: int | None = None,
        clock: object = time.monotonic,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes if path != "-" else None
        self.files = files
        self._clock = clock
        self._overwrite = overwrite
        self.frames = 0  # written, over every file
        self.error: str | None = None  # why writing stopped (disk full), None while it goes on
        self.names: list[str] = []  # every file written, in order
        self._index = 0
        self._open(path, overwrite)

    # -- files -------------------------------------------------------------------------------

    def _name(self, index: int) -> str:
        return self.path if index == 0 else f"{self.path}{index}"

    def _open(self, name: str, overwrite: bool) -> None:
        self._f = open_export(name, overwrite)
        self._fd = self._f.fileno()
        self._ifaces: dict[str, int] = {}
        self._buf = bytearray()  # whole blocks only, written out by flush()
        self._pending = 0  # frames in the buffer
        self._size = 0  # the file's length once the buffer is out
        self._durable = 0  # bytes on disk, all whole blocks
        self._last_flush = self._now()
        if name not in self.names:
            self.names.append(name)
        self._put(shb())

    def _rotate(self) -> None:
        self._close_file()
        if self.error is not None:
            return
        self._index += 1
        if self.files is not None and self._index >= self.files:
            self._index = 0  # a ring: the oldest of our own files is written again
        name = self._name(self._index)
        # our own earlier file may be overwritten; anything else there is refused as at start
        # (open_export: O_EXCL, or the overwrite checks). A refusal ends the writing as a full
        # disk does: the files so far stay whole and the trace says why, it does not crash
        try:
            self._open(name, overwrite=name in self.names or self._overwrite)
        except (ExportRefused, OSError) as exc:
            why = str(exc) if isinstance(exc, ExportRefused) else (exc.strerror or str(exc))
            self.error = f"stopped writing after {self.frames} frames: cannot open {name}: {why}"

    def _close_file(self) -> None:
        self.flush()
        if self.path == "-":
            return
        self._f.close()

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    # -- writing -----------------------------------------------------------------------------

    def _put(self, block: bytes) -> None:
        self._buf += block
        self._size += len(block)
        if len(self._buf) >= 1 << 16:
            self.flush()

    def write_rows(self, rows: Iterable[PacketRow]) -> None:
        """Every sighting of ``rows`` in time order; flushes when a second has passed."""
        items = sorted(((s.time_ns, r, s) for r in rows for s in r.hops), key=lambda x: x[0])
        for _, r, s in items:
            if self.error is not None:
                return
            if self.max_bytes is not None and self._size >= self.max_bytes:
                self._rotate()
                if self.error is not None:
                    return
            i = self._ifaces.get(s.dev)
            if i is None:
                i = self._ifaces[s.dev] = len(self._ifaces)
                self._put(idb(s.dev, f"kvmtui hop: {s.role}"))
            comment = f"row {r.seq}: {r.direction}, {s.role} {s.dev}"
            self._put(epb(i, s.time_ns, s.data, s.wire_len, s.outgoing, comment))
            self._pending += 1
        if self._now() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Write the buffer out; on failure cut the file back to its last whole block."""
        self._last_flush = self._now()
        if self.error is not None or not self._buf:
            return
        view = memoryview(self._buf)
        done = 0
        try:
            while done < len(view):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            view.release()
            why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            self.error = (
                f"stopped writing {self._name(self._index)} after {self.frames} frames: {why}"
            )
            if self.path != "-":
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._durable)
            self._buf = bytearray()
            return
        view.release()
        self._durable += done
        self.frames += self._pending
        self._pending = 0
        self._buf = bytearray()

    def close(self) -> None:
        self._close_file()
