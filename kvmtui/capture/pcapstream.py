"""A pcapng file written while the capture runs: what ``trace --pcap`` streams to.

As the engine's ``sink`` (called in the capture thread), :meth:`PcapngStream.add_frames` gets
every frame every hop's kernel filter passed, correlated or not (under a flood most are not):
each is held back ``HOLD_NS`` so that the row it belongs to, when the correlator makes one in
its window, is named in its comment. Without frames, :meth:`write_rows` writes the sightings of
the rows it is given (the TUI's export). One interface block per hop; flushed at least once a
second, so Ctrl-C, SIGTERM, an SSH drop (SIGHUP) or a kill leaves a file that Wireshark reads
up to its last second. Blocks are written whole: on a full disk the file is cut back to the
last complete block and writing stops with one line, never a packet half written.
``max_bytes``/``files`` rotate like tcpdump's ``-C``/``-W``: FILE, FILE1, FILE2, ..., and with
``files`` a ring that reuses its own names.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.pcapng import ExportRefused, epb, epb_plain, idb, open_export, shb
from kvmtui.capture.ring import PACKET_OUTGOING, RawPacket

FLUSH_EVERY_S = 1.0


def _ts(p: RawPacket) -> int:
    return p[0]


HOLD_NS = 600_000_000  # a frame waits this long for its row's name (the correlator's window)
MAX_HELD = 50_000  # beyond this the oldest frames go out unnamed rather than wait


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
        self._raw = False  # fed with add_frames: rows only name the frames
        self._held: deque[tuple[int, Sequence[RawPacket]]] = deque()  # (newest time, frames)
        self._nheld = 0
        self._hops: dict[int, tuple[str, str]] = {}
        self._names: dict[tuple[str, int], str] = {}  # (dev, time) -> the row's comment
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

    def add_frames(self, frames: Sequence[RawPacket], hops: Mapping[int, tuple[str, str]]) -> None:
        """Every frame the hops captured (``hops``: hop index -> (device, role)); written
        ``HOLD_NS`` later, named after its row if :meth:`write_rows` got that row by then."""
        self._raw = True
        if frames:
            self._hops.update(hops)
            self._held.append((max(map(_ts, frames)), frames))
            self._nheld += len(frames)
        self._drain(time.time_ns() - HOLD_NS)

    def write_rows(self, rows: Iterable[PacketRow]) -> None:
        """With frames (:meth:`add_frames`): name each row's frames. Without: every sighting
        of ``rows`` in time order. Flushes when a second has passed."""
        if self._raw:
            for r in rows:
                for s in r.hops:
                    self._names[(s.dev, s.time_ns)] = (
                        f"row {r.seq}: {r.direction}, {s.role} {s.dev}"
                    )
            self._drain(time.time_ns() - HOLD_NS)
            return
        items = sorted(((s.time_ns, r, s) for r in rows for s in r.hops), key=lambda x: x[0])
        for _, r, s in items:
            comment = f"row {r.seq}: {r.direction}, {s.role} {s.dev}"
            if not self._frame(s.dev, s.role, s.time_ns, s.data, s.wire_len, s.outgoing, comment):
                return
        if self._now() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def _drain(self, cutoff_ns: int) -> None:
        """Write the held batches whose newest frame is older than ``cutoff_ns`` (and the
        oldest past MAX_HELD, named or not), in time order across hops."""
        ready: list[RawPacket] = []
        held = self._held
        while held and (held[0][0] <= cutoff_ns or self._nheld > MAX_HELD):
            _newest, frames = held.popleft()
            ready.extend(frames)
            self._nheld -= len(frames)
        if ready:
            ready.sort(key=_ts)  # each hop's frames are in order already: runs to merge
            self._write_raw(ready)
        names = self._names
        if len(names) > 4 * MAX_HELD or (names and not self._nheld):
            self._names = {k: v for k, v in names.items() if k[1] > cutoff_ns}
        if self._now() - self._last_flush >= FLUSH_EVERY_S:
            self.flush()

    def _write_raw(self, frames: list[RawPacket]) -> None:
        names, hops, ifaces = self._names, self._hops, self._ifaces
        plain = self.max_bytes is None  # no rotation to check between frames
        blocks: list[bytes] = []
        iface_of: dict[int, tuple[int, str, str]] = {}  # hop -> (interface, device, role)
        for ts, hop, pkttype, wire, data in frames:
            known = iface_of.get(hop)
            if known is None:
                dev, role = hops.get(hop, (f"hop{hop}", "hop"))
                i = ifaces.get(dev)
                if i is None:
                    if blocks:
                        self._put_many(blocks)
                    i = ifaces[dev] = len(ifaces)
                    self._put(idb(dev, f"kvmtui hop: {role}"))
                known = iface_of[hop] = (i, dev, role)
            i, dev, role = known
            comment = names.pop((dev, ts), None) if names else None
            if plain and comment is None:
                blocks.append(epb_plain(i, ts, data, wire, pkttype == PACKET_OUTGOING))
                if len(blocks) >= 2048:  # out in slices: the buffer stays small
                    self._put_many(blocks)
                continue
            if blocks:
                self._put_many(blocks)
            if not self._frame(
                dev, role, ts, data, wire, pkttype == PACKET_OUTGOING, comment or ""
            ):
                return
            if not plain:
                iface_of.clear()  # a rotation starts a file with no interfaces
                ifaces = self._ifaces
        if blocks:
            self._put_many(blocks)

    def _put_many(self, blocks: list[bytes]) -> None:
        """Whole blocks out at once (and the list emptied)."""
        if self.error is None:
            data = b"".join(blocks)
            self._buf += data
            self._size += len(data)
            self._pending += len(blocks)
            if len(self._buf) >= 1 << 16:
                self.flush()
        blocks.clear()

    def _frame(
        self, dev: str, role: str, ts: int, data: bytes, wire: int, outgoing: bool, comment: str
    ) -> bool:
        """One frame out (rotating first when the file is full); False once writing stopped."""
        if self.error is not None:
            return False
        if self.max_bytes is not None and self._size >= self.max_bytes:
            self._rotate()
            if self.error is not None:
                return False
        i = self._ifaces.get(dev)
        if i is None:
            i = self._ifaces[dev] = len(self._ifaces)
            self._put(idb(dev, f"kvmtui hop: {role}"))
        self._put(epb(i, ts, data, wire, outgoing, comment))
        self._pending += 1
        return True

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

    @property
    def size(self) -> int:
        """The current file's length, buffer included."""
        return self._size

    @property
    def held(self) -> int:
        """Frames waiting for their row's name."""
        return self._nheld

    @property
    def durable(self) -> int:
        """Bytes of the current file on disk, whole blocks only."""
        return self._durable

    def sync(self) -> None:
        """Every held frame out now (named if its row came) and the buffer written."""
        if self._raw:
            self._drain(1 << 62)
        self.flush()

    def discard(self) -> None:
        """Close and remove the files written (the capture never started)."""
        self._raw = False
        self._close_file()
        if self.path != "-":
            for name in self.names:
                with contextlib.suppress(OSError):
                    os.unlink(name)

    def close(self) -> None:
        if self._raw:
            self._drain(1 << 62)  # everything still held
        self._close_file()


def write_rows(path: str, rows: Iterable[PacketRow], overwrite: bool = False) -> int:
    """Every sighting of every row, under its hop's interface, in time order; the frames
    written. The writer ``trace --pcap`` streams to, in one go (the capture view's export of a
    session without a spool); a write that fails (a full disk) raises OSError with its line."""
    stream = PcapngStream(path, overwrite)
    stream.write_rows(rows)
    stream.close()
    if stream.error:
        raise OSError(stream.error)
    return stream.frames
