"""Exact per-hop and per-flow counts of a capture (``trace --stats``), also where rows are sampled.

Under a flood the correlator follows only the newest frames (the rest are counted as skipped),
so rows cannot say how many frames of a flow crossed each hop. :class:`FlowStats` is an engine
sink: it sees every frame every hop's filter passed and counts, per hop, frames and bytes, and
per flow and hop, frames. The flow key is read at fixed offsets (802.1Q tags skipped): IPv4 or
IPv6 protocol, addresses and ports (ICMP: its id), or the ethertype for anything else; no
decode per frame. A NAT rewrites the flow on the uplink: the correlated rows' translations
(``Nat``) map the outside flow back to the VM's, so a flow is one line across its hops.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.ring import RawPacket

FlowKey = tuple[str, str, str]  # (proto, "src[:port]", "dst[:port]")
_PORTS = struct.Struct("!HH")
_PROTO = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
MAX_FLOWS = 10_000  # beyond this, new flows are counted under ("other", "*", "*")


def flow_of(data: bytes) -> FlowKey:
    """The flow of one Ethernet frame, from fixed offsets."""
    n = len(data)
    off, etype = 14, int.from_bytes(data[12:14], "big") if n >= 14 else 0
    while etype in (0x8100, 0x88A8) and off + 4 <= n:
        etype = int.from_bytes(data[off + 2 : off + 4], "big")
        off += 4
    if etype == 0x0800 and off + 20 <= n:
        ihl = (data[off] & 0x0F) * 4
        proto = data[off + 9]
        src = socket.inet_ntop(socket.AF_INET, data[off + 12 : off + 16])
        dst = socket.inet_ntop(socket.AF_INET, data[off + 16 : off + 20])
        return _l4(proto, src, dst, data, off + ihl)
    if etype == 0x86DD and off + 40 <= n:
        proto = data[off + 6]
        src = socket.inet_ntop(socket.AF_INET6, data[off + 8 : off + 24])
        dst = socket.inet_ntop(socket.AF_INET6, data[off + 24 : off + 40])
        return _l4(proto, src, dst, data, off + 40)
    if etype == 0x0806:
        return ("arp", "*", "*")
    return (f"ethertype 0x{etype:04x}", "*", "*")


def _l4(proto: int, src: str, dst: str, data: bytes, l4: int) -> FlowKey:
    name = _PROTO.get(proto, f"ip proto {proto}")
    if proto in (6, 17) and l4 + 4 <= len(data):
        sport, dport = _PORTS.unpack_from(data, l4)
        return (name, _ep(src, sport), _ep(dst, dport))
    if proto in (1, 58) and l4 + 6 <= len(data):
        ident = int.from_bytes(data[l4 + 4 : l4 + 6], "big")
        return (name, _ep(src, ident), _ep(dst, ident))
    return (name, src, dst)


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, slots=True)
class HopCount:
    dev: str
    role: str
    frames: int
    bytes: int


@dataclass(frozen=True, slots=True)
class FlowCount:
    proto: str
    src: str
    dst: str
    per_hop: tuple[tuple[str, int], ...]  # (dev, frames) in path order

    @property
    def lost(self) -> tuple[tuple[str, str, int], ...]:
        """(from hop, to hop, frames) where fewer frames reached the next hop the flow goes to:
        path order for a flow from the VM, the reverse for one towards it (the side that saw
        more is where it came from)."""
        seq = self.per_hop
        if seq and seq[0][1] < seq[-1][1]:
            seq = seq[::-1]
        out = []
        for (a, na), (b, nb) in itertools.pairwise(seq):
            if nb < na:
                out.append((a, b, na - nb))
        return tuple(out)


class FlowStats:
    """The engine's sink for ``trace --stats`` (its capture thread); :meth:`result` any time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hops: dict[int, list[Any]] = {}  # index -> [dev, role, frames, bytes]
        self._flows: dict[FlowKey, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._nat: dict[FlowKey, FlowKey] = {}  # an outside flow -> the VM's flow

    def add_frames(self, frames: list[RawPacket], hops: Mapping[int, tuple[str, str]]) -> None:
        with self._lock:
            flows = self._flows
            for _ts, hop, _pkttype, wire, data in frames:
                h = self._hops.get(hop)
                if h is None:
                    dev, role = hops.get(hop, (f"hop{hop}", "hop"))
                    h = self._hops[hop] = [dev, role, 0, 0]
                h[2] += 1
                h[3] += wire
                key = flow_of(data)
                if key not in flows and len(flows) >= MAX_FLOWS:
                    key = ("other", "*", "*")
                flows[key][hop] += 1

    def write_rows(self, rows: Iterable[PacketRow]) -> None:
        """The rows' NAT translations: the uplink's flow is the VM's flow."""
        with self._lock:
            for r in rows:
                if r.nat is None:
                    continue
                up = next((s for s in r.hops if s.role == "uplink"), None)
                vm_side = next((s for s in r.hops if s.role != "uplink"), None)
                if up is not None and vm_side is not None:
                    self._nat[flow_of(up.data)] = flow_of(vm_side.data)

    def result(self) -> tuple[tuple[HopCount, ...], tuple[FlowCount, ...]]:
        with self._lock:
            order = sorted(self._hops)
            hops = tuple(HopCount(*self._hops[i]) for i in order)
            merged: dict[FlowKey, dict[int, int]] = defaultdict(lambda: defaultdict(int))
            for key, per in self._flows.items():
                target = self._nat.get(key, key)
                for hop, n in per.items():
                    merged[target][hop] += n
            flows = []
            for key, per in merged.items():
                seq = tuple((self._hops[i][0], per[i]) for i in order if i in per)
                flows.append(FlowCount(key[0], key[1], key[2], seq))
        flows.sort(key=lambda f: -max(n for _, n in f.per_hop))
        return hops, tuple(flows)


def stats_text(hops: tuple[HopCount, ...], flows: tuple[FlowCount, ...], top: int = 20) -> str:
    """The lines ``trace --stats`` prints at the end."""
    lines = ["per hop (every frame its filter passed, exact):"]
    lines += [f"  {h.role:<7} {h.dev:<12} {h.frames:>10} frames {h.bytes:>13} bytes" for h in hops]
    lines.append(f"per flow (frames at each hop, path order; {len(flows)} flows):")
    for f in flows[:top]:
        at = ", ".join(f"{dev} {n}" for dev, n in f.per_hop)
        lost = "; ".join(f"{n} lost {a} -> {b}" for a, b, n in f.lost)
        lines.append(f"  {f.proto} {f.src} > {f.dst}: {at}" + (f"  ({lost})" if lost else ""))
    if len(flows) > top:
        lines.append(f"  ... and {len(flows) - top} more flows")
    return "\n".join(lines)


def stats_json(hops: tuple[HopCount, ...], flows: tuple[FlowCount, ...]) -> dict[str, Any]:
    return {
        "stats": {
            "hops": [{"dev": h.dev, "role": h.role, "frames": h.frames, "bytes": h.bytes}
                     for h in hops],
            "flows": [{"proto": f.proto, "src": f.src, "dst": f.dst,
                       "frames": dict(f.per_hop),
                       "lost": [{"from": a, "to": b, "frames": n} for a, b, n in f.lost]}
                      for f in flows],
        }
    }  # fmt: skip


class Tee:
    """Two sinks as one (``trace --pcap FILE --stats``)."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def add_frames(self, frames: list[RawPacket], hops: Mapping[int, tuple[str, str]]) -> None:
        for s in self.sinks:
            s.add_frames(frames, hops)

    def write_rows(self, rows: Iterable[PacketRow]) -> None:
        rows = list(rows)
        for s in self.sinks:
            s.write_rows(rows)
