"""A passive listener per bridge: MAC -> IP from ARP and DHCP, with when it was last seen.

A bridged VM's IP must not vanish when the host's neighbour entry ages out. One AF_PACKET socket
per bridge, with a kernel BPF filter that lets only ARP and DHCP through (compiled by
:mod:`kvmtui.capture.bpf`), reads what the bridge delivers to the host itself: broadcasts (ARP
who-has, DHCP) and what is for or from the host (dnsmasq's Acks). No promiscuous mode, no socket
option but the filter, nothing sent: read-only.

``apply_wire(snap, table)`` fills a VM NIC's IP the host's tables do not know with
``ip_source="wire"`` and ``ip_seen_at`` (its age: "seen on the wire 4 s ago").
"""

from __future__ import annotations

import contextlib
import dataclasses
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping

from kvmtui.capture import bpf
from kvmtui.core.model import HostSnapshot

FILTER = "arp or (udp and (port 67 or port 68))"
ETH_P_ALL = 0x0003
_ZERO = "0.0.0.0"


@dataclasses.dataclass(frozen=True, slots=True)
class WireSeen:
    ip: str
    seen_at: float  # time.time()
    how: str  # "arp" or "dhcp ack"


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def parse(frame: bytes) -> tuple[str, str, str] | None:
    """(mac, ip, how) a frame proves: an ARP sender, or a DHCP Ack's client and address."""
    if len(frame) < 14:
        return None
    off, etype = 12, struct.unpack_from("!H", frame, 12)[0]
    if etype == 0x8100 and len(frame) >= 18:
        off, etype = 16, struct.unpack_from("!H", frame, 16)[0]
    p = off + 2
    if etype == 0x0806 and len(frame) >= p + 28:
        htype, ptype, hlen, plen = struct.unpack_from("!HHBB", frame, p)
        if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
            return None
        ip = socket.inet_ntoa(frame[p + 14 : p + 18])
        mac = _mac(frame[p + 8 : p + 14])
        return None if ip == _ZERO else (mac, ip, "arp")
    if etype != 0x0800 or len(frame) < p + 20:
        return None
    ihl = (frame[p] & 0x0F) * 4
    if frame[p + 9] != 17:
        return None
    u = p + ihl
    d = u + 8
    if len(frame) < d + 240 or struct.unpack_from("!H", frame, u)[0] != 67:
        return None  # only the server's side (port 67 -> 68) names the bound address
    if frame[d] != 2 or frame[d + 236 : d + 240] != b"\x63\x82\x53\x63":
        return None
    yiaddr = socket.inet_ntoa(frame[d + 16 : d + 20])
    chaddr = _mac(frame[d + 28 : d + 34])
    i = d + 240
    while i + 1 < len(frame):
        code = frame[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        ln = frame[i + 1]
        if code == 53 and ln >= 1 and i + 2 < len(frame):
            if frame[i + 2] == 5 and yiaddr != _ZERO:  # DHCPACK
                return chaddr, yiaddr, "dhcp ack"
            return None
        i += 2 + ln
    return None


class WireListener:
    """``start(bridges)``, ``table()``, ``update(bridges)``, ``stop()``; thread-safe."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self.error: str | None = None
        self._socks: dict[str, socket.socket] = {}
        self._table: dict[str, WireSeen] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._insns = bpf.compile_filter(FILTER)

    def __enter__(self) -> WireListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _open(self, dev: str) -> socket.socket | None:
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except OSError as exc:
            self.error = f"cannot listen on the wire: {exc.strerror or exc}"
            return None
        try:
            bpf.reject_all(s)  # nothing unfiltered queues before the real filter
            s.bind((dev, ETH_P_ALL))
            with contextlib.suppress(BlockingIOError):
                while s.recv(65536, socket.MSG_DONTWAIT):
                    pass
            bpf.attach(s, self._insns)
            s.setblocking(False)
            return s
        except OSError as exc:
            s.close()
            self.error = f"cannot listen on {dev}: {exc.strerror or exc}"
            return None

    def update(self, bridges: Iterable[str]) -> None:
        """Listen on exactly these bridges (new ones opened, gone ones closed)."""
        want = set(bridges)
        with self._lock:
            for dev in list(self._socks):
                if dev not in want:
                    self._socks.pop(dev).close()
            for dev in sorted(want - set(self._socks)):
                s = self._open(dev)
                if s is not None:
                    self._socks[dev] = s

    def start(self, bridges: Iterable[str]) -> WireListener:
        self.update(bridges)
        self._thread = threading.Thread(target=self._run, name="kvmtui-wire", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        with self._lock:
            for s in self._socks.values():
                s.close()
            self._socks.clear()

    def table(self) -> dict[str, WireSeen]:
        with self._lock:
            return dict(self._table)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                socks = list(self._socks.values())
            if not socks:
                self._stop.wait(0.5)
                continue
            try:
                ready, _, _ = select.select(socks, [], [], 0.5)
            except (OSError, ValueError):
                continue  # a socket closed by update(): next round
            for s in ready:
                for _ in range(64):
                    try:
                        frame = s.recv(2048)
                    except (BlockingIOError, OSError):
                        break
                    self._note(frame)

    def _note(self, frame: bytes) -> None:
        got = parse(frame)
        if got is None:
            return
        mac, ip, how = got
        with self._lock:
            self._table[mac] = WireSeen(ip, time.time(), how)
            if len(self._table) > self.max_entries:
                oldest = min(self._table, key=lambda m: self._table[m].seen_at)
                del self._table[oldest]


def listen(bridges: Iterable[str], seconds: float) -> tuple[dict[str, WireSeen], str | None]:
    """One-shot: listen ``seconds`` on the bridges; (table, error line or None)."""
    w = WireListener().start(bridges)
    try:
        time.sleep(max(0.0, seconds))
        return w.table(), w.error
    finally:
        w.stop()


def apply_wire(snap: HostSnapshot, table: Mapping[str, WireSeen]) -> HostSnapshot:
    """``snap`` with the IP of each VM NIC the host's tables lost, as seen on the wire."""
    if not table:
        return snap
    vms = []
    changed = False
    for vm in snap.vms:
        nics = []
        for n in vm.nics:
            seen = table.get(n.mac.lower())
            if seen is not None and (n.ip is None or n.ip_source == "none"):
                n = dataclasses.replace(n, ip=seen.ip, ip_source="wire", ip_seen_at=seen.seen_at)
                changed = True
            nics.append(n)
        vms.append(dataclasses.replace(vm, nics=tuple(nics)))
    return dataclasses.replace(snap, vms=tuple(vms)) if changed else snap


def seen_words(seen_at: float | None, now: float) -> str:
    """'seen on the wire 4 s ago'."""
    if seen_at is None:
        return "seen on the wire"
    return f"seen on the wire {max(0, round(now - seen_at))} s ago"
