"""The switch view's contract: one row per frame crossing a bridge, and FDB events between them.

``kvmtui.capture.switch.SwitchSession`` produces these (``kvmtui switch BRIDGE`` and the TUI's
switch screen are its clients). JSON rows carry ``in_port``, ``out_ports``, ``decision``,
``src``, ``dst``, ``src_mac``, ``dst_mac``, ``proto`` like trace rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Decision = Literal["forward", "flood", "broadcast", "multicast", "local", "filtered"]


@dataclass(frozen=True, slots=True)
class SwitchRow:
    seq: int
    time_ns: int
    in_port: str
    out_ports: tuple[str, ...]  # the ports it left by, in time order
    decision: Decision
    src_mac: str
    dst_mac: str
    src: str  # IP or MAC
    dst: str
    proto: str
    summary: str
    because: str  # the FDB entry that decided it: "52:54:00:aa:01:04 learned on vnet3 12 s ago"


@dataclass(frozen=True, slots=True)
class FdbEvent:
    time_ns: int
    kind: Literal["learned", "moved", "aged", "deleted"]
    mac: str
    port: str | None
    text: str  # "learned 52:54:00:aa:01:01 on vnet1"


@dataclass(frozen=True, slots=True)
class PortCount:
    port: str
    rx_frames: int  # frames that entered the bridge by this port (exact, even when sampled)
    tx_frames: int  # frames that left by it
    dropped: int  # kernel drops on this port's socket


@dataclass(frozen=True, slots=True)
class SwitchBatch:
    rows: tuple[SwitchRow, ...] = ()
    events: tuple[FdbEvent, ...] = ()
    counts: tuple[PortCount, ...] = ()
    sampled: bool = False  # rows are a sample (under a flood); counts stay exact
    running: bool = True
    error: str | None = None
