"""Hop correlation: the same packet seen on the tap, the bridge and the uplink becomes one row.

A packet is recognised at every hop by :attr:`Frame.key` (IPv4 ID, protocol, L4 payload length
and CRC: what bridging, routing and MASQUERADE leave alone). Sightings are grouped by key within
a short window; a row is final when every hop the packet should cross has seen it, or when the
window has passed, in which case the hops it never reached are named ("seen on vnet0 and
virbr0, never on wan0").

Which hops a packet should cross depends on the network's mode:
- bridge: frames from the VM go tap -> bridge -> uplink, unless addressed to the bridge itself;
- nat/route/open: the bridge is the VM's router; only packets to another network (not the
  bridge's subnet, not broadcast) go on to the uplink, rewritten by MASQUERADE for nat;
- isolated: tap -> bridge, and nowhere else.
Packets towards the VM are expected from the hop they were first seen on down to the tap.

On the uplink of a NAT network the kernel filter cannot know the translated tuples beforehand,
so uplink sightings are *candidates*: kept only when a VM-side sighting (tap or bridge) of the
same key joins them. That also drops the host's own traffic on the uplink.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kvmtui.capture.decode import Frame, decode
from kvmtui.capture.ring import PACKET_OUTGOING, RawPacket
from kvmtui.core.model import L2_MODES
from kvmtui.doctor.model import Fate

_L2 = L2_MODES  # frames leave the host as they are (core.model: the mode sets, once)


@dataclass(frozen=True, slots=True)
class HopSpec:
    """A capturable hop: its index in the path, device, role ('tap', 'bridge', 'uplink')."""

    index: int
    dev: str
    role: str
    vm_side: bool  # its kernel filter keeps only the VM's frames (by MAC)


@dataclass(frozen=True, slots=True)
class Sighting:
    hop: int
    dev: str
    role: str
    time_ns: int  # kernel timestamp
    outgoing: bool  # the device was sending it (PACKET_OUTGOING), else receiving
    wire_len: int
    data: bytes
    frame: Frame


@dataclass(frozen=True, slots=True)
class Nat:
    """How the packet changed between the VM side and the uplink."""

    from_: str  # "192.168.122.5:7" (inside)
    to: str  # "198.51.100.2:7" (outside)
    conntrack: bool | None = None  # a conntrack entry agrees (None: not checked)
    conntrack_detail: str | None = None


@dataclass(frozen=True, slots=True)
class PacketRow:
    """One packet, with where and when it was seen."""

    seq: int
    direction: str  # "out" (from the VM), "in" (to the VM)
    frame: Frame  # as seen nearest to the VM
    hops: tuple[Sighting, ...]  # in time order
    expected: tuple[str, ...]  # devices it should have crossed, in path order
    missing: tuple[str, ...]  # expected devices that never saw it
    nat: Nat | None = None
    dead_end: str | None = None  # the path has no way out and the packet wanted one
    # where and why the kernel freed it (skb:kfree_skb), set by kvmtui.doctor's drop tracer
    fate: Fate | None = None

    @property
    def time_ns(self) -> int:
        """When the first hop saw it (hops are in path order, not always in time order)."""
        return min(s.time_ns for s in self.hops) if self.hops else 0

    @property
    def summary(self) -> str:
        return self.frame.summary()

    @property
    def stopped(self) -> str | None:
        """'seen on vnet0, virbr0; never on wan0' when it did not cross every hop, else None."""
        seen = ", ".join(dict.fromkeys(s.dev for s in self.hops))
        if self.missing:
            return f"seen on {seen}; never on {', '.join(self.missing)}"
        if self.dead_end:
            return f"seen on {seen}; goes no further: {self.dead_end}"
        return None

    def offsets_us(self) -> tuple[tuple[str, float], ...]:
        """(dev, microseconds after the first sighting) per hop."""
        t0 = self.time_ns
        return tuple((s.dev, (s.time_ns - t0) / 1000.0) for s in self.hops)


@dataclass(slots=True)
class _Open:
    key: tuple[object, ...]
    first_ns: int
    last_ns: int
    sightings: list[Sighting] = field(default_factory=list)

    def has_hop(self, hop: int) -> bool:
        return any(s.hop == hop for s in self.sightings)

    def same_vlan(self, f: Frame) -> bool:
        """Can ``f`` be this packet at another hop? A bridge or a VLAN device pushes and pops
        outer tags but never rewrites the ones it keeps, so of two tag stacks one ends the
        other: () and (20,) and (100, 20) are one packet, (20,) and (30,) are two."""
        a = f.vlans
        if not a:
            return True
        for s in self.sightings:
            b = s.frame.vlans
            short, long = (a, b) if len(a) <= len(b) else (b, a)
            if short and long[len(long) - len(short) :] != short:
                return False
        return True


NatCheck = Callable[[int, tuple[object, ...], tuple[object, ...]], tuple[bool | None, str | None]]


class Correlator:
    """Feed raw packets with :meth:`add`; collect final rows with :meth:`flush`.

    Not thread-safe: the capture worker owns it.
    """

    def __init__(
        self,
        hops: Sequence[HopSpec],
        vm_mac: str,
        mode: str,
        *,
        local_nets: Sequence[str] = (),  # the bridge's subnets ("192.168.122.1/24")
        local_macs: Sequence[str] = (),  # the bridge's own MAC(s)
        way_out: bool = True,
        verdict: str = "",
        window_ns: int = 400_000_000,
        max_open: int = 4096,
        nat_check: NatCheck | None = None,
    ) -> None:
        self.set_hops(hops)
        self.vm_mac = vm_mac.lower()
        self.mode = mode
        self.nets = []
        for n in local_nets:
            try:
                self.nets.append(ipaddress.ip_interface(n).network)
            except ValueError:
                continue
        self.local_ips = {str(ipaddress.ip_interface(n).ip) for n in local_nets if _ok_if(n)}
        self.local_macs = {m.lower() for m in local_macs}
        self.window_ns = window_ns
        self.way_out = way_out
        self.verdict = verdict
        self.max_open = max_open
        self.nat_check = nat_check
        self._open: OrderedDict[tuple[object, ...], _Open] = OrderedDict()
        self._ready: list[_Open] = []
        self._seq = 0
        self.discarded = 0  # uplink candidates that were not the VM's

    def set_hops(self, hops: Sequence[HopSpec]) -> None:
        """After a re-resolution (the tap came back as another vnet)."""
        self.hops = {h.index: h for h in hops}
        self.order = sorted(self.hops)
        self._taps = [i for i in self.order if self.hops[i].role in ("tap", "macvtap")]
        self._bridges = [i for i in self.order if self.hops[i].role == "bridge"]
        self._ups = [i for i in self.order if self.hops[i].role == "uplink"]
        self._vm_side = {i for i in self.order if self.hops[i].vm_side}

    def add(self, pkt: RawPacket) -> Sighting | None:
        """Take one packet; return its sighting (None when it is not the VM's)."""
        ts, hop, pkttype, wire, data = pkt
        spec = self.hops.get(hop)
        if spec is None:
            return None
        frame = decode(data)
        if spec.vm_side and not self._is_vm(frame):
            return None  # another VM's broadcast DHCP, let through by the filter for the DHCP view
        s = Sighting(hop, spec.dev, spec.role, ts, pkttype == PACKET_OUTGOING, wire, data, frame)
        key = frame.key
        cur = self._open.get(key)
        if cur is not None and not cur.same_vlan(frame):
            # the same bytes on another VLAN: another packet, kept apart by its inner tag
            key = (*key, "vlan", frame.vlans[-1])
            cur = self._open.get(key)
        if cur is not None and (cur.has_hop(hop) or ts - cur.last_ns > self.window_ns):
            # the same bytes again at a hop that already saw them: another packet
            self._ready.append(self._open.pop(key))
            cur = None
        if cur is None:
            cur = _Open(key, ts, ts)
            self._open[key] = cur
            if len(self._open) > self.max_open:
                self._ready.append(self._open.popitem(last=False)[1])
        cur.sightings.append(s)
        cur.first_ns = min(cur.first_ns, ts)
        cur.last_ns = max(cur.last_ns, ts)
        if self._complete(cur):
            self._ready.append(self._open.pop(key))
        return s

    def flush(self, now_ns: int, force: bool = False) -> list[PacketRow]:
        """Rows that are final: complete, or older than the window (or everything if force)."""
        while self._open:
            key, o = next(iter(self._open.items()))
            if not force and now_ns - o.last_ns < self.window_ns:
                break
            self._ready.append(o)
            del self._open[key]
        if force:
            self._ready.extend(self._open.values())
            self._open.clear()
        ready, self._ready = self._ready, []
        rows = []
        for o in ready:
            row = self._row(o)
            if row is not None:
                rows.append(row)
        rows.sort(key=lambda r: r.time_ns)
        return rows

    # -- internals ----------------------------------------------------------------------------

    def _is_vm(self, f: Frame) -> bool:
        vm = self.vm_mac
        return (
            f.src_mac == vm or f.dst_mac == vm or (f.dhcp is not None and f.dhcp.client_mac == vm)
        )

    def _vm_sighting(self, o: _Open) -> Sighting | None:
        """The sighting nearest the VM among hops whose filter is the VM's MAC."""
        best = None
        for s in o.sightings:
            if s.hop in self._vm_side and (best is None or s.hop < best.hop):
                best = s
        return best

    def _direction(self, s: Sighting) -> str:
        return "out" if s.frame.src_mac == self.vm_mac else "in"

    def _expected(self, direction: str, f: Frame, o: _Open) -> list[int]:
        taps, bridges, ups = self._taps, self._bridges, self._ups
        if direction == "in":
            seen_up = [s.hop for s in o.sightings if s.hop in ups]
            return seen_up[:1] + bridges + taps if seen_up else bridges + taps
        exp = taps + bridges
        if ups and self._leaves(f):
            seen_up = [s.hop for s in o.sightings if s.hop in ups]
            # several uplinks (a bond's slaves, two ports): one is enough
            exp += seen_up[:1] if seen_up else ups[:1]
        return exp

    def _leaves(self, f: Frame, routed: bool = False) -> bool:
        """Should an outgoing packet from the VM cross the uplink?"""
        if self.mode in _L2:
            return f.dst_mac not in self.local_macs
        if routed or self.mode in ("nat", "route", "open"):
            if f.net not in ("ipv4", "ipv6") or f.dst_ip is None:
                return False
            try:
                dst = ipaddress.ip_address(f.dst_ip)
            except ValueError:
                return False
            if dst.is_multicast or f.dst_ip == "255.255.255.255" or f.dst_ip in self.local_ips:
                return False
            if dst.is_link_local:
                return False
            return not any(dst in n for n in self.nets if n.version == dst.version)
        return False

    def _complete(self, o: _Open) -> bool:
        """Final before the window ends? Each hop's ring hands over its blocks on its own
        schedule, so a packet towards the VM may show up on the tap before we read it on the
        uplink: such a packet is complete only when every hop saw it (else the window decides)."""
        vs = self._vm_sighting(o)
        if vs is None:
            return False
        seen = {s.hop for s in o.sightings}
        if self._direction(vs) == "in":
            return all(h in seen for h in self.order)
        exp = self._expected("out", vs.frame, o)
        return all(h in seen for h in exp)

    def _row(self, o: _Open) -> PacketRow | None:
        vs = self._vm_sighting(o)
        if vs is None:
            # only seen on a hop whose filter is not the VM's MAC (a NAT uplink): not the VM's
            self.discarded += 1
            return None
        direction = self._direction(vs)
        # path order in the packet's sense, not time order: a bridge hands a forwarded frame to
        # the out port before it passes a copy up to its own (promiscuous) device, so ens9 may
        # be stamped a few us before br0; each hop keeps its own time
        sign = 1 if direction == "out" else -1
        sights = tuple(sorted(o.sightings, key=lambda s: (sign * s.hop, s.time_ns)))
        exp = self._expected(direction, vs.frame, o)
        seen = {s.hop for s in sights}
        expected = tuple(self.hops[h].dev for h in exp)
        missing = tuple(self.hops[h].dev for h in exp if h not in seen)
        if (
            direction == "in" and self.mode in _L2 and vs.frame.src_mac
            and not any(self.hops[h].role == "uplink" for h in seen if h in self.hops)
        ):  # fmt: skip
            # it reached the VM without crossing the uplink: that MAC is on this side (another
            # VM, the host), so the VM's frames to it are not expected on the uplink either
            self.local_macs.add(vs.frame.src_mac)
        nat = self._nat(direction, vs, sights)
        dead = None
        if direction == "out" and not self.way_out and self._leaves(vs.frame, routed=True):
            dead = self.verdict or "no way out"
        self._seq += 1
        return PacketRow(self._seq, direction, vs.frame, sights, expected, missing, nat, dead)

    def _nat(self, direction: str, vs: Sighting, sights: tuple[Sighting, ...]) -> Nat | None:
        up = next((s for s in sights if s.role == "uplink"), None)
        if up is None:
            return None
        a, b = vs.frame, up.frame
        if a.flow == b.flow:
            return None
        if direction == "out":
            inside, outside = a.flow, b.flow
            frm, to = _ep(inside[0], inside[1]), _ep(outside[0], outside[1])
        else:  # a reply: its destination was translated back
            inside, outside = a.flow, b.flow
            frm, to = _ep(outside[2], outside[3]), _ep(inside[2], inside[3])
        ok, detail = (None, None)
        if self.nat_check is not None and a.ip_proto is not None:
            ok, detail = self.nat_check(a.ip_proto, inside, outside) if direction == "out" else (
                self.nat_check(a.ip_proto, _rev(inside), _rev(outside))
            )  # fmt: skip
        return Nat(frm, to, ok, detail)


def _rev(flow: tuple[object, ...]) -> tuple[object, ...]:
    return (flow[2], flow[3], flow[0], flow[1])


def _ok_if(n: str) -> bool:
    try:
        ipaddress.ip_interface(n)
    except ValueError:
        return False
    return True


def _ep(ip: object, port: object) -> str:
    if port is None:
        return str(ip)
    return f"[{ip}]:{port}" if ":" in str(ip) else f"{ip}:{port}"
