"""A capture session: one VM NIC's packets, seen at every hop of its path, for the UI and the CLI.

``CaptureSession(path)`` opens one AF_PACKET socket (a TPACKET_V3 ring, :mod:`ring`) per
capturable hop of a :class:`~kvmtui.core.model.NicPath` (tap, bridge, uplink), inside the host's
network namespace, each with its own kernel BPF filter:

- tap and bridge (and the uplink of a bridged VM): ``ether host <VM MAC>``, plus DHCP's ports
  so a broadcast Offer is seen too;
- the uplink of a NAT/routed network: IP to or from the uplink's address (the VM's packets
  after MASQUERADE); user space keeps only those that match a packet seen on the VM's side,
  and checks the translation against conntrack.

A worker thread reads the rings, correlates sightings into rows (:mod:`correlate`), follows
DHCP transactions (:mod:`dhcp`) and keeps everything in bounded buffers. :meth:`poll`
(every ~100 ms from the UI) returns an immutable :class:`CaptureBatch`: new rows, updated DHCP
transactions, per-hop counters (kernel drops included) and events ("tap vnet0 vanished").

Under a flood the kernel rings are still drained every loop (so the kernel does not drop), but
at most ``backlog`` frames per loop (the newest) are decoded and correlated; the others are
counted in ``skipped``: the table shows the latest packets and says how many it passed over.

When a hop's device disappears (the VM shut down), the session says so and, every second,
asks ``resolve(mac)`` for a new path: when the VM is back, maybe under another vnet name, the
hop is reopened on the new device.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from kvmtui.capture import bpf
from kvmtui.capture.correlate import Correlator, HopSpec, PacketRow
from kvmtui.capture.dhcp import DhcpTracker, DhcpTransaction
from kvmtui.capture.ring import PROMISC_EXPLANATION, CaptureError, PacketRing, RawPacket
from kvmtui.core.hostlinks import host_view, links_or_empty, reresolve_tap
from kvmtui.core.model import L2_MODES, Hop, Network, NicPath
from kvmtui.core.netns import in_netns

CAPTURE_ROLES = ("tap", "macvtap", "bridge", "uplink")
DHCP_BPF = "udp and (port 67 or port 68)"

Resolver = Callable[[str], NicPath | None]

__all__ = [
    "PROMISC_EXPLANATION",
    "CaptureBatch",
    "CaptureError",
    "CaptureEvent",
    "CaptureSession",
    "HopStatus",
]


@dataclass(frozen=True, slots=True)
class HopStatus:
    index: int  # position in the path's hops
    dev: str
    role: str
    state: str  # capturing, gone, down, error
    received: int = 0  # frames that passed the kernel filter
    dropped: int = 0  # kernel drops (ring full)
    promisc: bool = False
    filter: str = ""
    message: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureEvent:
    time: float
    kind: str  # hop-gone, hop-back, hop-down, error, info
    message: str
    dev: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureBatch:
    rows: tuple[PacketRow, ...]  # new since the last poll
    dhcp: tuple[DhcpTransaction, ...]  # transactions updated since the last poll
    hops: tuple[HopStatus, ...]
    events: tuple[CaptureEvent, ...]
    packets: int  # frames read from the kernel so far
    skipped: int  # frames read but not correlated (backlog under a flood, or paused)
    lost_rows: int  # rows that fell out of the new-rows buffer before a poll took them
    running: bool


@dataclass(slots=True)
class _HopState:
    spec: HopSpec
    filter: str
    promisc: bool
    ring: PacketRing | None = None
    state: str = "capturing"
    message: str | None = None
    received: int = 0  # counters of closed rings
    dropped: int = 0


class FrameSink(Protocol):
    """Takes every frame the hops captured, and the rows made of them, in the capture thread
    (a pcapng stream: :class:`kvmtui.capture.pcapstream.PcapngStream`). It must keep up or
    the kernel ring fills and drops, as tcpdump -w's does: those drops are counted."""

    def add_frames(self, frames: list[RawPacket], hops: Mapping[int, tuple[str, str]]) -> None: ...

    def write_rows(self, rows: Iterable[PacketRow]) -> None: ...


def capture_hops(path: NicPath) -> list[tuple[int, Hop]]:
    return [(i, h) for i, h in enumerate(path.hops) if h.dev and h.role in CAPTURE_ROLES]


class CaptureSession:
    """Capture one VM NIC at every hop. Use as a context manager, or start()/stop().

    ``sink`` (or the attribute, set before :meth:`start`) takes every frame the hops read, in
    the capture thread: the rings are then read whole, not only their newest frames."""

    def __init__(
        self,
        path: NicPath,
        *,
        netns: str | None = None,
        bpf_filter: str | None = None,
        resolve: Resolver | None = None,
        networks: Sequence[Network] = (),
        vm_by_mac: Mapping[str, str] | None = None,
        conntrack: bool = True,
        max_rows: int = 10_000,
        backlog: int = 2_000,
        window_s: float = 0.4,
        block_size: int = 1 << 20,
        block_nr: int = 8,
        sink: FrameSink | None = None,
    ) -> None:
        self.path = path
        self.netns = netns
        self.user_filter = (bpf_filter or "").strip()
        if self.user_filter:
            bpf.compile_filter(self.user_filter)  # BpfError now, before any socket
        self.resolve = resolve
        self.networks = tuple(networks)
        self.conntrack = conntrack
        self.max_rows = max_rows
        self.backlog = backlog
        self.window_ns = int(window_s * 1e9)
        self.block_size, self.block_nr = block_size, block_nr
        self._new: deque[PacketRow] = deque(maxlen=max_rows)
        self.sink = sink
        self._dhcp_new: dict[tuple[int, str], DhcpTransaction] = {}
        self._events: deque[CaptureEvent] = deque(maxlen=1000)
        self._lock = threading.RLock()  # guards buffers and rings against poll()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hops: dict[int, _HopState] = {}
        self.packets = 0
        self.skipped = 0
        self.lost_rows = 0
        self.paused = False
        self.error: str | None = None
        vm_names = dict(vm_by_mac or {})
        vm_names.setdefault(path.mac.lower(), path.vm)
        # one netlink dump for the bridges' addresses, the uplink's address (a NAT uplink's
        # filter) and the bridge's own MAC (refreshed when the path is re-resolved)
        self._links = links_or_empty(netns)
        self.view = host_view(netns, self.networks, self._links)
        self.dhcp = DhcpTracker(replace(self.view, uplinks=self._uplinks(path)), vm_names)
        self._ct_cache: tuple[float, str, list[object]] | None = None
        self.correlator = self._make_correlator(path)

    # -- setup --------------------------------------------------------------------------------

    @staticmethod
    def _uplinks(path: NicPath) -> tuple[str, ...]:
        return tuple(h.dev for h in path.hops if h.role == "uplink" and h.dev)

    def _vm_side(self, role: str) -> bool:
        return role != "uplink" or self.path.mode in L2_MODES

    def _make_correlator(self, path: NicPath) -> Correlator:
        bridge = next((h.dev for h in path.hops if h.role == "bridge" and h.dev), None)
        nets: list[str] = []
        macs: list[str] = []
        if bridge:
            for lk in self._links:
                if lk.name == bridge:
                    macs.append(str(lk.mac))
                    nets.extend(str(a) for a in lk.addresses)
            if path.mode in L2_MODES:
                macs.extend(self._local_fdb_macs(bridge, path))
        return Correlator(
            self._specs(path), path.mac, str(path.mode), local_nets=nets, local_macs=macs,
            way_out=path.way_out, verdict=path.verdict,
            window_ns=self.window_ns, nat_check=self._nat_check if self.conntrack else None,
        )  # fmt: skip

    def _local_fdb_macs(self, bridge: str, path: NicPath) -> list[str]:
        """MACs the bridge has learned on ports other than its uplinks (other VMs, the host):
        a bridged VM's frames to them stay on the bridge and are not expected on the uplink.
        The correlator also learns such MACs from replies; this covers the first packets."""
        from kvmtui.core.netlink import read_fdb

        uplinks = set(self._uplinks(path))
        try:
            fdb = read_fdb(self.netns, bridge=bridge)
        except Exception:  # the FDB is a hint: without it the correlator learns from replies
            return []
        return [e.mac for e in fdb if e.port not in uplinks and e.mac != path.mac.lower()]

    def _specs(self, path: NicPath) -> list[HopSpec]:
        return [
            HopSpec(i, str(h.dev), h.role, self._vm_side(h.role)) for i, h in capture_hops(path)
        ]

    def _filter_for(self, role: str, dev: str) -> str:
        mac = self.path.mac.lower()
        if self._vm_side(role):
            base = f"(ether host {mac}) or ({DHCP_BPF})"
        else:
            base = "ip or ip6"
            if self.path.mode == "nat":
                v4 = []
                for lk in self._links:
                    if lk.name == dev:
                        v4 = [str(a).split("/")[0] for a in lk.addresses if ":" not in str(a)]
                if v4:
                    base = " or ".join(f"host {a}" for a in v4)
        return bpf.combine(base, self.user_filter)

    def _open(self, spec: HopSpec) -> _HopState:
        promisc = spec.role == "bridge"
        flt = self._filter_for(spec.role, spec.dev)
        st = _HopState(spec, flt, promisc)
        st.ring = PacketRing(
            spec.dev, self.netns, flt, promisc=promisc, hop=spec.index,
            block_size=self.block_size, block_nr=self.block_nr,
        )  # fmt: skip
        return st

    def start(self) -> CaptureSession:
        """Open every hop (raises CaptureError / BpfError with a one-line message)."""
        try:
            socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
        except PermissionError:
            raise CaptureError(
                "capturing needs root (or CAP_NET_RAW and CAP_NET_ADMIN): run kvmtui as root"
            ) from None
        if not self.path.mac or self.path.mac.count(":") != 5:
            raise CaptureError(f"{self.path.vm}: its NIC's MAC address is unknown, cannot filter")
        specs = self._specs(self.path)
        if not specs:
            raise CaptureError(f"{self.path.vm}: nothing to capture ({self.path.verdict})")
        try:
            for spec in specs:
                self._hops[spec.index] = self._open(spec)
        except Exception:
            self._close_all()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kvmtui-capture", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            self._close_all()

    def __enter__(self) -> CaptureSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_all(self) -> None:
        for st in self._hops.values():
            self._close_hop(st)

    def _close_hop(self, st: _HopState) -> None:
        if st.ring is not None:
            s = st.ring.stats() if not st.ring.closed else None
            if s is not None:
                st.received += s.received
                st.dropped += s.dropped
            st.ring.close()
            st.ring = None

    # -- the UI's side ------------------------------------------------------------------------

    def poll(self) -> CaptureBatch:
        """What happened since the last poll (cheap: swaps buffers under a lock)."""
        with self._lock:
            rows = tuple(self._new)
            self._new.clear()
            dh = tuple(self._dhcp_new.values())
            self._dhcp_new.clear()
            ev = tuple(self._events)
            self._events.clear()
            hops = self._hop_status()
            return CaptureBatch(
                rows, dh, hops, ev, self.packets, self.skipped, self.lost_rows,
                self._thread is not None and self._thread.is_alive(),
            )  # fmt: skip

    def _hop_status(self) -> tuple[HopStatus, ...]:
        out = []
        for i in sorted(self._hops):
            st = self._hops[i]
            rec, drop = st.received, st.dropped
            if st.ring is not None and not st.ring.closed:
                s = st.ring.stats()
                rec, drop = rec + s.received, drop + s.dropped
            out.append(
                HopStatus(
                    i,
                    st.spec.dev,
                    st.spec.role,
                    st.state,
                    rec,
                    drop,
                    st.promisc,
                    st.filter,
                    st.message or (PROMISC_EXPLANATION if st.promisc else None),
                )
            )
        return tuple(out)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def clear(self) -> None:
        with self._lock:
            self._new.clear()

    def transactions(self) -> tuple[DhcpTransaction, ...]:
        with self._lock:
            return self.dhcp.transactions()

    # -- worker -------------------------------------------------------------------------------

    def _event(self, kind: str, message: str, dev: str | None = None) -> None:
        with self._lock:
            self._events.append(CaptureEvent(time.time(), kind, message, dev))

    def _nat_check(
        self, proto: int, inside: tuple[object, ...], outside: tuple[object, ...]
    ) -> tuple[bool | None, str | None]:
        from kvmtui.core.conntrack import ConntrackEntry, ConntrackError, entries_for, find_nat

        src = str(inside[0])
        now = time.monotonic()
        cached = self._ct_cache
        for attempt in range(2):
            if cached is None or cached[1] != src or now - cached[0] > 0.5 or attempt:
                try:
                    ents: list[object] = list(entries_for(src, self.netns, proto))
                except ConntrackError as exc:
                    return None, str(exc)
                cached = self._ct_cache = (time.monotonic(), src, ents)
            e = find_nat(cached[2], proto, inside, outside)  # type: ignore[arg-type]
            if isinstance(e, ConntrackEntry):
                o, r = e.orig, e.reply
                return True, (
                    f"conntrack: {o[0]}:{o[1]} -> {o[2]}:{o[3]}, "
                    f"reply {r[0]}:{r[1]} -> {r[2]}:{r[3]}"
                )
        return False, "no conntrack entry explains this translation"

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # the worker must never die silently
            self.error = f"capture stopped: {type(exc).__name__}: {exc}"
            self._event("error", self.error)

    def _loop(self) -> None:
        poller = select.poll()
        registered: dict[int, _HopState] = {}

        def sync_poller() -> None:
            for fd in list(registered):
                st = registered[fd]
                if st.ring is None or st.ring.fileno() != fd:
                    with contextlib.suppress(KeyError, ValueError):
                        poller.unregister(fd)
                    del registered[fd]
            for st in self._hops.values():
                if st.ring is not None and st.ring.fileno() not in registered:
                    poller.register(st.ring.fileno(), select.POLLIN | select.POLLERR)
                    registered[st.ring.fileno()] = st

        sync_poller()
        last_check = time.monotonic()
        sink = self.sink
        while not self._stop.is_set():
            ready = poller.poll(50)
            for fd, ev in ready:
                if ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    st = registered.get(fd)
                    if st is not None:
                        self._hop_error(st)
                        sync_poller()
            per_ring: list[list[RawPacket]] = []
            total = 0
            for st in self._hops.values():
                if st.ring is not None:
                    got: list[RawPacket] = []
                    # frames past the backlog are counted, not copied (ring.read's docstring),
                    # unless a sink takes every frame (a file)
                    keep = 0 if self.paused else self.backlog
                    total += st.ring.read(got, keep=1 << 30 if sink is not None else keep)
                    per_ring.append(got)
            self.packets += total
            if sink is not None:  # in this thread: under a flood the kernel ring is the buffer
                sink.add_frames([p for g in per_ring for p in g], self._hop_names())
            batch: list[RawPacket] = []
            if self.paused:
                self.skipped += total
            elif total > self.backlog:
                # a flood: correlate only the newest frames of each hop (each ring is in time
                # order), count the rest as skipped; the kernel rings are drained all the same
                share = max(1, self.backlog // len(per_ring))
                for g in per_ring:
                    batch.extend(g[-share:])
                self.skipped += total - len(batch)
                batch.sort(key=lambda p: p[0])
            else:
                for g in per_ring:
                    batch.extend(g)
                batch.sort(key=lambda p: p[0])
            dhcp_updates = []
            for p in batch:
                s = self.correlator.add(p)
                if s is not None and s.frame.dhcp is not None:
                    tx = self.dhcp.add(s.frame, s.dev, s.role, s.time_ns, s.hop)
                    if tx is not None:
                        dhcp_updates.append(tx)
            rows = self.correlator.flush(time.time_ns())
            if sink is not None and rows:
                sink.write_rows(rows)
            if rows or dhcp_updates:
                with self._lock:
                    for r in rows:
                        if len(self._new) == self._new.maxlen:
                            self.lost_rows += 1
                        self._new.append(r)
                    for tx in dhcp_updates:
                        self._dhcp_new[(tx.xid, tx.client)] = tx
            now = time.monotonic()
            if now - last_check >= 1.0:
                last_check = now
                self._check_devices()
                sync_poller()
        rows = self.correlator.flush(time.time_ns(), force=True)
        if sink is not None:
            sink.write_rows(rows)
        with self._lock:
            for r in rows:
                self._new.append(r)

    def _hop_names(self) -> dict[int, tuple[str, str]]:
        return {i: (st.spec.dev, st.spec.role) for i, st in self._hops.items()}

    def _exists(self, dev: str, ifindex: int) -> bool:
        try:
            with in_netns(self.netns):
                return bool(socket.if_nametoindex(dev) == ifindex)
        except OSError:
            return False

    def _hop_error(self, st: _HopState) -> None:
        ring = st.ring
        if ring is None:
            return
        err = ring.error()
        if self._exists(st.spec.dev, ring.ifindex):
            if st.state != "down":
                st.state = "down"
                st.message = f"{st.spec.dev} went down (error {err}); capture resumes when it is up"
                self._event("hop-down", f"{st.spec.role} {st.spec.dev} went down", st.spec.dev)
            return
        self._gone(st)

    def _gone(self, st: _HopState) -> None:
        with self._lock:
            self._close_hop(st)
            st.state = "gone"
            st.message = f"{st.spec.dev} vanished; waiting for the VM's MAC to come back"
        self._event(
            "hop-gone",
            f"{st.spec.role} {st.spec.dev} vanished (VM shut down or NIC unplugged?); "
            f"capture resumes when {self.path.mac} comes back",
            st.spec.dev,
        )

    def _check_devices(self) -> None:
        for st in self._hops.values():
            if st.ring is not None and not self._exists(st.spec.dev, st.ring.ifindex):
                self._gone(st)
            elif st.state == "down" and st.ring is not None:
                st.state, st.message = "capturing", None
        if any(st.state == "gone" for st in self._hops.values()):
            self._reresolve()

    def _reresolve(self) -> None:
        try:
            new = (
                self.resolve(self.path.mac)
                if self.resolve is not None
                else reresolve_tap(self.path, self.netns)
            )
        except Exception as exc:
            self._event("error", f"re-resolving {self.path.vm}: {exc}")
            return
        if new is None:
            return
        specs = {s.index: s for s in self._specs(new)}
        opened = []
        for idx, spec in specs.items():
            st = self._hops.get(idx)
            if st is not None and st.ring is not None and st.spec.dev == spec.dev:
                continue
            # the device must exist now, else try again next second
            try:
                with in_netns(self.netns):
                    socket.if_nametoindex(spec.dev)
            except OSError:
                return
            try:
                nst = self._open(spec)
            except (CaptureError, OSError) as exc:
                self._event("error", f"reopening {spec.dev}: {exc}", spec.dev)
                return
            with self._lock:
                old = self._hops.get(idx)
                if old is not None:
                    self._close_hop(old)
                    nst.received, nst.dropped = old.received, old.dropped
                self._hops[idx] = nst
            opened.append((old.spec.dev if old else None, spec))
        self.path = new
        self._links = links_or_empty(self.netns)
        self.correlator.set_hops(list(specs.values()))
        for old_dev, spec in opened:
            was = f" (was {old_dev})" if old_dev and old_dev != spec.dev else ""
            self._event("hop-back", f"{spec.role} is back as {spec.dev}{was}", spec.dev)
