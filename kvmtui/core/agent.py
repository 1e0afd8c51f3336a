"""``kvmtui agent``: the headless side that ``kvmtui --host HOST`` runs over SSH.

It writes JSON lines on stdout: first ``{"agent": PROTOCOL, "version": kvmtui.__version__}``,
then ``{"snapshot": <inventory --json document>}`` now and after every change (LiveHost.watch)
until stdin closes or it is killed; ``--once`` stops after the first snapshot. The client
(:mod:`kvmtui.core.remote`) refuses an agent of another PROTOCOL with one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading

import kvmtui
from kvmtui.core.jsonout import snapshot_json
from kvmtui.core.model import HostSnapshot

PROTOCOL = 1


def _emit(obj: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def run_agent(args: argparse.Namespace) -> int:
    from kvmtui.core.live import LiveHost

    _emit({"agent": PROTOCOL, "version": kvmtui.__version__})
    src = LiveHost(uri=getattr(args, "connect", None))
    try:
        _emit({"snapshot": snapshot_json(src.snapshot())})
        if getattr(args, "once", False):
            return 0
        stop = threading.Event()

        def on_snapshot(snap: HostSnapshot) -> None:
            try:
                _emit({"snapshot": snapshot_json(snap)})
            except (BrokenPipeError, OSError):
                stop.set()

        def stdin_closed() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=stdin_closed, daemon=True).start()
        with contextlib.suppress(KeyboardInterrupt):
            src.watch(on_snapshot, stop)
    except BrokenPipeError:
        return 0
    finally:
        src.close()
    return 0
