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

from kvmtui.core.hosts import HostUnavailable
from kvmtui.core.model import HostSnapshot
from kvmtui.core.recorded import RecordingWriter, create_file


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
            print(
                "kvmtui: --vm: frame capture into the recording is not in this build yet; "
                "recording the host model only",
                file=sys.stderr,
            )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait(seconds)
        stop.set()
        t.join(timeout=5.0)
    finally:
        stop.set()
        with lock:
            writer.close()
        src.close()
    print(
        f"kvmtui: recorded {writer.count} snapshot(s) over {time.time() - started:.1f} s to {path}",
        file=sys.stderr,
    )
    return 0
