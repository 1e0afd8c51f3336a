"""Typed messages: what thread workers post to the app (handled on the main thread), and what
widgets ask of the app without importing it (``GoTo``: the palette and panes name a target, the
app shows it), so ``ui/app.py`` imports the widgets and never the other way round."""

from __future__ import annotations

from collections.abc import Mapping

from textual.message import Message

from kvmtui.core.model import HostSnapshot, LinkStats
from kvmtui.doctor.model import HostDiagnosis


class SnapshotReady(Message):
    """A snapshot of the host explored since the app's ``gen``-th host switch (a message of
    a host left behind is dropped)."""

    def __init__(self, snapshot: HostSnapshot, gen: int = 0) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.gen = gen


class CountersReady(Message):
    def __init__(self, counters: Mapping[str, LinkStats], at: float, gen: int = 0) -> None:
        super().__init__()
        self.counters = counters
        self.at = at
        self.gen = gen


class DiagnosisReady(Message):
    """The doctor's verdicts for one snapshot (read_facts ran in a worker; diagnose is pure)."""

    def __init__(self, diagnosis: HostDiagnosis, snapshot: HostSnapshot) -> None:
        super().__init__()
        self.diagnosis = diagnosis
        self.snapshot = snapshot


class GoTo(Message):
    """Show this target: ``kind`` is vm, bridge, network or mac; ``name`` its name."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__()
        self.kind = kind
        self.name = name
