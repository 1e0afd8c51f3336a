"""The doctor's throttle: the newest item only, never two runs at once, one start per interval."""

from __future__ import annotations

from collections.abc import Callable

from kvmtui.ui.throttle import Throttle


def test_newest_item_one_run_at_a_time_and_one_start_per_interval() -> None:
    now = [100.0]
    started: list[str] = []
    timers: list[tuple[float, Callable[[], None]]] = []
    t: Throttle[str] = Throttle(
        2.0, started.append, lambda s, f: timers.append((s, f)), monotonic=lambda: now[0]
    )
    t.want("a")
    assert started == ["a"] and t.busy
    t.want("b")
    t.want("c")  # b is dropped: only the newest waits
    assert started == ["a"] and t.pending == "c"
    now[0] += 0.5
    t.done()  # a ended 0.5 s after it started: c waits out the interval
    assert started == ["a"] and timers and abs(timers[-1][0] - 1.5) < 1e-9
    now[0] += 1.5
    timers[-1][1]()
    assert started == ["a", "c"] and t.pending is None
    now[0] += 5
    t.done()
    t.want("d")  # long after: at once
    assert started == ["a", "c", "d"]


def test_stopped_starts_nothing() -> None:
    started: list[str] = []
    t: Throttle[str] = Throttle(1.0, started.append, lambda s, f: None, stopped=lambda: True)
    t.want("a")
    assert started == [] and not t.busy
