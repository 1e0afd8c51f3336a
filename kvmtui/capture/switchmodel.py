"""The switch view's contract: one row per frame crossing a bridge, and FDB events between them.

``kvmtui.capture.switch.SwitchSession`` produces these (``kvmtui switch BRIDGE`` and the TUI's
switch screen are its clients). JSON rows carry ``in_port``, ``out_ports``, ``decision``,
``src``, ``dst``, ``src_mac``, ``dst_mac``, ``proto`` like trace rows.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def flood_words(in_port: str, out_ports: Sequence[str], ports: Sequence[str], bridge: str) -> str:
    """A flood in words. The bridge sends a frame for an unknown MAC to every port but the one it
    came in by; its own port (the host) takes a copy only when the bridge is promiscuous. So on a
    bridge with two VMs a flood leaves by one port, the other VM's, and is still a flood."""
    others = [p for p in ports if p not in (in_port, bridge)]
    text = f"flood: every other port ({', '.join(others) or 'none'})"
    gone = [p for p in out_ports if p != bridge]
    if any(p not in out_ports for p in others):
        text += f", seen leaving by {', '.join(gone) or 'none'} only"
    if in_port == bridge:
        return text
    if bridge in out_ports:
        return text + f"; the bridge's own port {bridge} took it too: the bridge is promiscuous"
    return text + f"; the bridge's own port {bridge} takes unknown unicast only when promiscuous"


def out_cell(row: SwitchRow) -> str:
    """The ports a frame left by, for a table cell: a flood says it went to every other port."""
    outs = ",".join(row.out_ports) or "—"
    return f"others: {outs}" if row.decision == "flood" else outs
