"""Fates of captured packets: which trace rows the kernel freed on the path, where and why.

``FateTracker(path)`` runs a :class:`~kvmtui.doctor.droptrace.DropTracer` on the path's devices;
``annotate(rows)`` gives each row whose packet the kernel dropped a
:class:`~kvmtui.doctor.model.Fate`. A drop belongs to a row only when one of the row's own
sightings (device, length, kernel time) is a sighting of the dropped skb: a same-named device
in another namespace (every lab has a ``vnet0``) does not match.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from kvmtui.capture.correlate import PacketRow
from kvmtui.core.model import NicPath
from kvmtui.doctor.droptrace import Drop, DropTracer, TraceUnavailable
from kvmtui.doctor.model import Fate
from kvmtui.doctor.reasons import fate_words


def path_devices(path: NicPath) -> tuple[str, ...]:
    return tuple(dict.fromkeys(h.dev for h in path.hops if h.dev))


def fate_of(drop: Drop) -> Fate:
    return Fate(drop.hop, drop.reason, drop.location, fate_words(drop.hop, drop.reason))


def match_row(row: PacketRow, drops: Sequence[Drop], used: set[int]) -> Drop | None:
    """The drop of ``row``'s packet, if one of its sightings is a sighting of that skb."""
    mine = [(s.dev, s.wire_len, s.time_ns) for s in row.hops]
    for i, d in enumerate(drops):
        if i in used:
            continue
        if d.matches_all(mine):
            used.add(i)
            return d
    return None


class FateTracker:
    """Context manager; ``note`` is one line when drops cannot be traced (no root, no tracefs)."""

    def __init__(self, path: NicPath, tracer: DropTracer | None = None) -> None:
        self.path = path
        self.tracer = tracer or DropTracer(path_devices(path))
        self.note: str | None = None
        self._used: set[int] = set()
        self._started = False

    def __enter__(self) -> FateTracker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FateTracker:
        try:
            self.tracer.start()
            self._started = True
        except TraceUnavailable as exc:
            self.note = str(exc)
        return self

    def stop(self) -> None:
        if self._started:
            self.tracer.stop()
            self._started = False

    @property
    def error(self) -> str | None:
        return self.tracer.error

    @property
    def tracing(self) -> bool:
        """Drops are being traced (started, and the tracer has not failed)."""
        return self._started and not self.tracer.error

    def annotate(self, rows: Sequence[PacketRow]) -> list[PacketRow]:
        """``rows`` with ``fate`` set where the kernel freed the packet on the path."""
        if not self._started or not rows:
            return list(rows)
        if any(r.missing or r.dead_end for r in rows):
            self.tracer.sync()  # the drop may still sit in the trace buffer
        drops = self.tracer.drops()
        if self.tracer.error and self.note is None:
            self.note = self.tracer.error
        out = []
        for r in rows:
            # a packet that crossed every hop it should was not dropped on the path
            lost = bool(r.missing or r.dead_end)
            d = match_row(r, drops, self._used) if lost and r.fate is None else None
            out.append(dataclasses.replace(r, fate=fate_of(d)) if d else r)
        return out

    def drops(self) -> list[Drop]:
        return self.tracer.drops()
