"""Run the explorer on the hand-built sample snapshot: ``python -m tests.ui.sample_app``.

Used by the tmux smoke test (a real terminal, the real driver) and by bench/ui.py. Options:
``--churn`` makes the fake source emit a changed snapshot every 100 ms (FDB ages and a MAC that
comes and goes); ``--delay S`` delays the first snapshot like a slow host read.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Callable

from kvmtui.core.model import FdbEntry, HostSnapshot, MacOwner
from kvmtui.ui.app import KvmApp
from tests.ui.sample import FakeSource, sample_snapshot


class ChurningSource(FakeSource):
    """Every ``period`` s: FDB ages move and a transient MAC appears/disappears on br0."""

    def __init__(self, period: float = 0.1, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.period = period
        self.emitted = 0

    def watch(self, on_snapshot: Callable[[HostSnapshot], None], stop: threading.Event) -> None:
        base = self._snap
        n = 0
        while not stop.wait(self.period):
            n += 1
            bridges = []
            for b in base.bridges:
                fdb = tuple(
                    dataclasses.replace(e, age_s=(e.age_s + n * 0.1) % 300)
                    if e.age_s is not None
                    else e
                    for e in b.fdb
                )
                if b.name == "br0" and n % 2:
                    mac = f"02:00:0a:00:01:{n % 256:02x}"
                    owner = MacOwner("neighbour", "", "ens9", None)
                    fdb = (*fdb, FdbEntry(mac, "ens9", None, "learned", 0.0, owner))
                bridges.append(dataclasses.replace(b, fdb=fdb))
            snap = dataclasses.replace(base, bridges=tuple(bridges), taken_at=base.taken_at + n)
            self.emitted += 1
            on_snapshot(snap)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--churn", action="store_true")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--theme", default=None)
    args = p.parse_args()
    source: FakeSource
    snap = sample_snapshot(taken_at=time.time())  # lease expiry counts from now
    if args.churn:
        source = ChurningSource(snapshot=snap, snapshot_delay=args.delay)
    else:
        source = FakeSource(snap, snapshot_delay=args.delay)
    app = KvmApp(source, start_theme=args.theme)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    raise SystemExit(main())
