"""Typed messages the thread workers post to the app (handled on the main thread)."""

from __future__ import annotations

from collections.abc import Mapping

from textual.message import Message

from kvmtui.core.model import HostSnapshot, LinkStats


class SnapshotReady(Message):
    def __init__(self, snapshot: HostSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class CountersReady(Message):
    def __init__(self, counters: Mapping[str, LinkStats], at: float) -> None:
        super().__init__()
        self.counters = counters
        self.at = at


class SourceTrouble(Message):
    """The source could not be read; ``message`` is one line for the user."""

    def __init__(self, message: str, retrying: bool) -> None:
        super().__init__()
        self.message = message
        self.retrying = retrying
