"""The switch view's engine: every port of one bridge captured at once, one row per frame.

Each port (and the bridge device itself, standing for the host) gets a TPACKET_V3 ring
(:class:`kvmtui.capture.ring.PacketRing`). A frame that enters the bridge is seen on its in
port as received; the copies the bridge sends out are seen on the out ports as
``PACKET_OUTGOING`` with the very same bytes, so sightings are grouped by the frame's bytes
within a short window. The decision comes from the destination MAC and the FDB *as it was at
that frame*: a model of the FDB, dumped at start, kept current from netlink
(``RTM_NEWNEIGH``/``RTM_DELNEIGH`` on the bridge, :class:`kvmtui.core.nlwatch.NetlinkWatcher`)
and from the source MACs of the frames themselves (the bridge learns those).

Per-port counts are exact: every frame read from a ring is counted, even when the rows are a
sample (under a flood only frames whose bytes hash into one bucket in ``k`` are grouped, the
same on every port, and the batch says ``sampled``).
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from dataclasses import dataclass, field

from kvmtui.capture.decode import decode
from kvmtui.capture.ring import PACKET_OUTGOING, CaptureError, PacketRing, RawPacket
from kvmtui.capture.switchmodel import (
    Decision,
    FdbEvent,
    PortCount,
    SwitchBatch,
    SwitchRow,
    flood_words,
)
from kvmtui.core.model import Bridge, HostSnapshot
from kvmtui.core.nlfast import FdbChange

JOIN_NS = 50_000_000  # copies of one frame leave within this of its arrival
HOLD_NS = 250_000_000  # a frame's row is final this long after it arrived
AGEING_S = 300.0  # the kernel's default ageing time: a removal after that long is "aged"
BROADCAST = "ff:ff:ff:ff:ff:ff"


@dataclass(slots=True)
class _Entry:
    port: str
    kind: str  # learned, static, permanent
    since_ns: int  # last time the bridge saw this MAC as a source (learned entries)
    from_frame: bool = False  # learned from a frame's source, netlink has not said so yet


@dataclass(slots=True)
class _Group:
    first_ns: int
    data: bytes
    sights: list[tuple[int, int, int]] = field(default_factory=list)  # time, hop, pkttype


class SwitchSession:
    """Capture on every port of ``bridge``; :meth:`poll` returns what crossed it since."""

    def __init__(
        self,
        bridge: Bridge,
        snap: HostSnapshot,
        *,
        netns: str | None = None,
        max_rows: int = 400,
        wait_s: float = 0.1,
    ) -> None:
        self.bridge = bridge
        self.snap = snap
        self.netns = netns
        self.max_rows = max_rows
        self.wait_s = wait_s
        self.devs: list[str] = [p.name for p in bridge.ports] + [bridge.name]
        self._rings: list[PacketRing | None] = []
        self._rx = [0] * len(self.devs)
        self._tx = [0] * len(self.devs)
        self._fdb: dict[str, _Entry] = {}
        self._open: dict[bytes, _Group] = {}
        self._pending: list[tuple[int, FdbChange]] = []
        self._lock = threading.Lock()
        self._watcher: object | None = None
        self._seq = 0
        self._errors: list[str] = []
        self._running = False

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        now = time.time_ns()
        for e in self.bridge.fdb:
            self._fdb[e.mac] = _Entry(e.port, e.kind, now - int((e.age_s or 0) * 1e9))
        self._dump_fdb(now)
        self._start_watcher()
        opened = 0
        for hop, dev in enumerate(self.devs):
            try:
                ring = PacketRing(
                    dev, self.netns, block_size=1 << 18, block_nr=8, retire_ms=10, hop=hop
                )
            except CaptureError as exc:
                self._errors.append(str(exc))
                self._rings.append(None)
                continue
            self._rings.append(ring)
            opened += 1
        if opened == 0:
            self.stop()
            raise CaptureError(self._errors[0] if self._errors else "no port to capture on")
        self._running = True

    def _dump_fdb(self, now: int) -> None:
        from kvmtui.core import nlfast
        from kvmtui.core.nlsock import NlConn, NsHandle

        with contextlib.suppress(Exception), NsHandle(self.netns) as ns, NlConn.open(ns) as conn:
            names = {rl.index: rl.name for rl in nlfast.dump_links(conn)}
            recs = nlfast.dump_fdb(
                conn, bridge=self.bridge.index, names=names, bridge_name=self.bridge.name
            )
            self._fdb = {
                r.mac: _Entry(r.port, r.kind, now - int((r.age_s or 0) * 1e9)) for r in recs
            }

    def _start_watcher(self) -> None:
        from kvmtui.core.nlwatch import NetlinkWatcher

        def on_fdb(changes: tuple[FdbChange, ...]) -> None:
            # the time each change was read, not when the coalesced batch came (up to 40 ms
            # later): a frame between a delete and that moment was decided on the stale entry
            stamp = time.time_ns()
            with self._lock:
                self._pending.extend((c.time_ns or stamp, c) for c in changes)

        w = NetlinkWatcher(self.netns, lambda _k: None, on_fdb=on_fdb)
        try:
            w.start()
        except Exception as exc:  # netlink refused: rows still come, events do not
            self._errors.append(f"no live FDB events: {exc}")
            return
        self._watcher = w

    def stop(self) -> None:
        self._running = False
        for r in self._rings:
            if r is not None:
                r.close()
        w = self._watcher
        if w is not None:
            w.stop()  # type: ignore[attr-defined]
            self._watcher = None

    def __enter__(self) -> SwitchSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- poll -----------------------------------------------------------------------------

    def poll(self) -> SwitchBatch:
        if not self._running:
            return SwitchBatch(counts=self._counts(), running=False, error=self._error())
        rings = [r for r in self._rings if r is not None]
        p = select.poll()
        for r in rings:
            p.register(r.fileno(), select.POLLIN | select.POLLERR)
        p.poll(int(self.wait_s * 1000))
        raw: list[RawPacket] = []
        for i, ring in enumerate(self._rings):
            if ring is None:
                continue
            if ring.error():
                self._errors.append(f"{self.devs[i]} went away")
                ring.close()
                self._rings[i] = None
                continue
            ring.read(raw)
        bridge_hop = len(self.devs) - 1
        ingress = 0
        for _t, hop, ptype, _w, _d in raw:
            out = ptype == PACKET_OUTGOING
            if hop == bridge_hop:
                out = not out  # the host sending into the bridge is the bridge's rx
            if out:
                self._tx[hop] += 1
            else:
                self._rx[hop] += 1
                ingress += 1
        k = -(-ingress // self.max_rows) if ingress > self.max_rows else 1
        raw.sort(key=lambda p: p[0])
        done: list[_Group] = []
        for t, hop, ptype, _w, data in raw:
            if k > 1 and hash(data) % k:
                continue
            g = self._open.get(data)
            if g is not None and t - g.first_ns > JOIN_NS:
                done.append(g)
                g = None
            if g is None:
                g = self._open[data] = _Group(t, data)
            g.sights.append((t, hop, ptype))
        now = time.time_ns()
        for key, g in list(self._open.items()):
            if now - g.first_ns > HOLD_NS:
                done.append(g)
                del self._open[key]
        for g in done:
            if self._open.get(g.data) is g:
                del self._open[g.data]
        done.sort(key=lambda g: g.first_ns)
        rows: list[SwitchRow] = []
        events: list[FdbEvent] = []
        for g in done:
            events.extend(self._apply_until(g.first_ns))
            row = self._row(g)
            if row is not None:
                rows.append(row)
        events.extend(self._apply_until(now - HOLD_NS))
        return SwitchBatch(
            rows=tuple(rows), events=tuple(events), counts=self._counts(), sampled=k > 1,
            running=True, error=self._error(),
        )  # fmt: skip

    def _error(self) -> str | None:
        return "; ".join(dict.fromkeys(self._errors)) or None

    def _counts(self) -> tuple[PortCount, ...]:
        out = []
        for i, dev in enumerate(self.devs):
            r = self._rings[i] if i < len(self._rings) else None
            dropped = r.stats().dropped if r is not None and not r.closed else 0
            out.append(PortCount(dev, self._rx[i], self._tx[i], dropped))
        return tuple(out)

    # -- the FDB model --------------------------------------------------------------------

    def _apply_until(self, t_ns: int) -> list[FdbEvent]:
        with self._lock:
            due = [(s, c) for s, c in self._pending if s <= t_ns]
            self._pending = [(s, c) for s, c in self._pending if s > t_ns]
        out = []
        for stamp, ch in due:
            ev = self._apply(stamp, ch)
            if ev is not None:
                out.append(ev)
        return out

    def _apply(self, stamp: int, ch: FdbChange) -> FdbEvent | None:
        rec = ch.record
        if rec.bridge != self.bridge.name and rec.port not in self.devs:
            return None
        old = self._fdb.get(rec.mac)
        if ch.deleted:
            if old is None:
                return None
            del self._fdb[rec.mac]
            idle = (stamp - old.since_ns) / 1e9
            if old.kind == "learned" and idle >= AGEING_S - 5:
                text = f"aged out {rec.mac} on {rec.port} (unused {idle:.0f} s)"
                return FdbEvent(stamp, "aged", rec.mac, rec.port, text)
            return FdbEvent(stamp, "deleted", rec.mac, rec.port,
                            f"deleted {rec.mac} from {rec.port}")  # fmt: skip
        since = old.since_ns if old is not None and old.port == rec.port else stamp
        self._fdb[rec.mac] = _Entry(rec.port, rec.kind, since)
        if old is not None and old.port != rec.port:
            return FdbEvent(stamp, "moved", rec.mac, rec.port,
                            f"moved {rec.mac} from {old.port} to {rec.port}")  # fmt: skip
        if old is None or old.from_frame:
            what = "learned" if rec.kind == "learned" else f"added {rec.kind} entry"
            return FdbEvent(stamp, "learned", rec.mac, rec.port, f"{what} {rec.mac} on {rec.port}")
        return None

    def _row(self, g: _Group) -> SwitchRow | None:
        bridge_hop = len(self.devs) - 1
        ins = [(t, h) for t, h, p in g.sights if p != PACKET_OUTGOING and h != bridge_hop]
        outs: list[str] = []
        if ins:
            t_in, in_hop = ins[0]
            for _t, h, p in g.sights:
                if h == in_hop:
                    continue
                if (p == PACKET_OUTGOING) != (h == bridge_hop) and self.devs[h] not in outs:
                    outs.append(self.devs[h])
        else:
            host = [(t, h) for t, h, p in g.sights if p == PACKET_OUTGOING and h == bridge_hop]
            if not host:
                return None  # only copies seen (the arrival fell before the capture began)
            t_in, in_hop = host[0]
            for _t, h, p in g.sights:
                if p == PACKET_OUTGOING and h != bridge_hop and self.devs[h] not in outs:
                    outs.append(self.devs[h])
        in_port = self.devs[in_hop]
        f = decode(g.data)
        decision, because = self._decide(f.dst_mac, in_port, t_in, outs)
        if f.src_mac and not int(f.src_mac[:2] or "0", 16) & 1:
            e = self._fdb.get(f.src_mac)
            if e is None or e.kind == "learned":
                fresh = e is None or e.from_frame or e.port != in_port
                self._fdb[f.src_mac] = _Entry(in_port, "learned", t_in, fresh)
        self._seq += 1
        return SwitchRow(
            self._seq, t_in, in_port, tuple(outs), decision, f.src_mac, f.dst_mac,
            f.src_ip or f.src_mac, f.dst_ip or f.dst_mac, f.proto, f.summary(), because,
        )  # fmt: skip

    def _decide(self, dst: str, in_port: str, t: int, outs: list[str]) -> tuple[Decision, str]:
        if dst == BROADCAST:
            return "broadcast", "broadcast: sent to every other port"
        if dst and int(dst[:2], 16) & 1:
            return "multicast", "multicast: flooded to every other port (no snooping entry)"
        e = self._fdb.get(dst)
        if dst == self.bridge.mac or (e is not None and e.kind == "permanent"):
            where = e.port if e is not None else self.bridge.name
            return "local", f"{dst} is {where}'s own address: delivered to the host"
        if e is None:
            ports = self.devs[:-1]  # the last one is the bridge device itself
            return "flood", f"{dst} is not in the FDB: " + flood_words(
                in_port, outs, ports, self.bridge.name
            )
        if e.port == in_port:
            return "filtered", f"{dst} learned on {in_port}, the port it came in by: not sent back"
        age = max(0.0, (t - e.since_ns) / 1e9)
        how = "learned" if e.kind == "learned" else e.kind
        because = f"{dst} {how} on {e.port} {age:.0f} s ago"
        if not outs:
            because += " (not seen leaving: dropped?)"
        return "forward", because
