"""Run slow work for the newest of a stream of items, never two at once, at most once per
interval (the doctor's read of the host's facts after each snapshot). Main thread only: the
work itself is a thread worker that calls :meth:`Throttle.done` when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Throttle(Generic[T]):
    """``want(item)`` asks for ``start(item)``; while one runs, or within ``every_s`` of the
    last start, the newest item waits (older ones are dropped) and starts when it may."""

    def __init__(
        self,
        every_s: float,
        start: Callable[[T], Any],
        later: Callable[[float, Callable[[], None]], Any],
        *,
        stopped: Callable[[], bool] = lambda: False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_s = every_s
        self._start, self._later, self._stopped, self._now = start, later, stopped, monotonic
        self.busy = False
        self.pending: T | None = None
        self._last = -1e9

    def want(self, item: T) -> None:
        self.pending = item
        if self.busy:
            return  # done() picks the newest pending item
        wait = self._last + self.every_s - self._now()
        if wait > 0:
            self._later(wait, self._kick)
        else:
            self._kick()

    def _kick(self) -> None:
        item = self.pending
        if item is None or self.busy or self._stopped():
            return
        self.pending = None
        self.busy = True
        self._last = self._now()
        self._start(item)

    def done(self) -> None:
        self.busy = False
        if self.pending is not None:
            self.want(self.pending)
