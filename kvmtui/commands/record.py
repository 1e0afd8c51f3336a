"""``kvmtui record FILE [--seconds S] [--vm VM] [--overwrite]``: the host into one file.

The format is documented in :mod:`kvmtui.core.recorded` (a pcapng with the host model in custom
blocks); ``kvmtui --replay FILE ...`` reads it back.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kvmtui.core.hosts import HostUnavailable
from kvmtui.core.model import HostSnapshot
from kvmtui.core.recorded import RecordingWriter, create_file


class FrameRecorder:
    """The capture engine's sink for ``record --vm``: every frame of the VM's hops into the
    recording as ordinary pcapng blocks (an interface per hop, nanosecond timestamps, the
    direction), between the snapshots, under the writer's lock. Rows are not stored: a replay
    correlates the frames again."""

    def __init__(self, writer: RecordingWriter, lock: threading.Lock) -> None:
        self.writer, self.lock = writer, lock
        self.frames = 0
        self._ifaces: dict[str, int] = {}

    def add_frames(self, frames: list[Any], hops: Mapping[int, tuple[str, str]]) -> None:
        from kvmtui.capture.pcapng import epb_plain, idb
        from kvmtui.capture.ring import PACKET_OUTGOING

        blocks = []
        for ts, hop, pkttype, wire, data in frames:
            dev, role = hops.get(hop, (f"hop{hop}", "hop"))
            i = self._ifaces.get(dev)
            if i is None:
                i = self._ifaces[dev] = len(self._ifaces)
                blocks.append(idb(dev, f"kvmtui hop: {role}"))
            blocks.append(epb_plain(i, ts, data, wire, pkttype == PACKET_OUTGOING))
        if blocks:
            with self.lock:
                self.writer.raw(b"".join(blocks))
                self.frames += len(frames)

    def write_rows(self, rows: Iterable[Any]) -> None:
        pass


def _capture(args: argparse.Namespace, first: HostSnapshot, rec: FrameRecorder) -> Any:
    """A started capture of ``--vm``'s hops into the recording, or None (said in one line)."""
    from kvmtui.capture.bpf import BpfError
    from kvmtui.capture.engine import CaptureError, CaptureSession, capture_hops
    from kvmtui.commands.capture import select_path

    path, why = select_path(first, str(args.record_vm))
    if path is None:
        print(f"kvmtui: --vm: {why}; recording the host model only", file=sys.stderr)
        return None
    try:
        sess = CaptureSession(path, networks=first.networks, sink=rec, conntrack=False)
        sess.start()
    except (CaptureError, BpfError) as exc:
        print(f"kvmtui: --vm: {exc}; recording the host model only", file=sys.stderr)
        return None
    hops = ", ".join(f"{h.role} {h.dev}" for _, h in capture_hops(path))
    print(f"kvmtui: recording {path.vm}'s frames on {hops}", file=sys.stderr)
    return sess


def run_record(args: argparse.Namespace) -> int:
    from kvmtui.core.live import LiveHost

    path = str(args.file)
    seconds = float(getattr(args, "seconds", 10.0))
    if getattr(args, "replay", None) or getattr(args, "remote", None):
        print("kvmtui: record reads this host only (not --replay or --host)", file=sys.stderr)
        return 2
    try:
        f = create_file(path, overwrite=bool(getattr(args, "overwrite", False)))
    except HostUnavailable as e:
        print(f"kvmtui: {e}", file=sys.stderr)
        return e.code
    started = time.time()
    writer = RecordingWriter(f, started)
    src = LiveHost(uri=getattr(args, "connect", None))
    lock = threading.Lock()
    stop = threading.Event()
    frames = FrameRecorder(writer, lock)
    sess: Any = None

    def on_snapshot(snap: HostSnapshot) -> None:
        with lock:
            if not stop.is_set():
                writer.snapshot(snap)

    try:
        first = src.snapshot()
        with lock:
            writer.snapshot(first, at=started)
        t = threading.Thread(target=src.watch, args=(on_snapshot, stop), daemon=True)
        t.start()
        if getattr(args, "record_vm", None):
            sess = _capture(args, first, frames)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait(seconds)
        stop.set()
        t.join(timeout=5.0)
    finally:
        stop.set()
        if sess is not None:
            sess.stop()
        with lock:
            writer.close()
        src.close()
    caught = f" and {frames.frames} frames" if sess is not None else ""
    print(
        f"kvmtui: recorded {writer.count} snapshot(s){caught} over {time.time() - started:.1f} s "
        f"to {path}",
        file=sys.stderr,
    )
    return 0
