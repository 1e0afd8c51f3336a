"""The lessons' contract: each seed experiment as data (``kvmtui lab lesson`` and the TUI's
Lessons screen both walk :data:`kvmtui.lab.lessons.LESSONS`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LessonView = Literal["capture", "switch", "dhcp", "path", "doctor"]


@dataclass(frozen=True, slots=True)
class Lesson:
    name: str  # "bridged", "host-only", "nat", "dhcp", "no-bridge", "mac-learning"
    seed_section: str  # "1.1", "1.2", "1.3", "2", "3", "4"
    title: dict[str, str]  # {"en": ..., "vi": ...}
    claim: dict[str, str]  # the seed's claim, in plain words
    explain: dict[str, str]  # what to look at on screen and why it proves the claim
    view: LessonView  # the view that proves it
    vm: str | None = None  # the lab VM (short name) the view opens on
    bridge: str | None = None  # for the switch view
    bpf: str = "icmp"  # what the capture of the lesson's evidence keeps (tcpdump syntax)
