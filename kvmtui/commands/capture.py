"""``kvmtui trace VM`` and ``kvmtui dhcp VM``: the capture engine's headless clients.

``trace`` prints one line (or, with ``--json``, one JSON object) per correlated packet:
which hops saw it and when, and the NAT translation. ``dhcp`` waits for the VM's next DHCP
exchange and names the server that answered. Exit codes: 0 done, 1 nothing seen / cannot
capture, 2 bad arguments (unknown VM, bad BPF filter).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from kvmtui.capture.bpf import BpfError, check_filter
from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.engine import (
    CaptureBatch,
    CaptureError,
    CaptureSession,
    FrameSink,
    capture_hops,
)
from kvmtui.core.model import HostSnapshot, NicPath
from kvmtui.core.resolve import find_vm, shorten

if TYPE_CHECKING:
    from kvmtui.capture.pcapstream import PcapngStream


def _err(msg: str) -> None:
    print(f"kvmtui: {msg}", file=sys.stderr)


def _read_host(uri: str | None) -> HostSnapshot:
    from kvmtui.core.snapshot import read_host

    return read_host(uri=uri)


def select_path(snap: HostSnapshot, key: str) -> tuple[NicPath | None, str | None]:
    """The path of the NIC named by ``key``: a VM name (its first NIC with a tap), a tap name or
    a MAC. Returns (path, None) or (None, one-line reason)."""
    k = key.strip()
    low = k.lower()
    found = find_vm(snap, k)  # the one resolver: also a light VM's short lab name
    if found is not None and not found[1]:
        k = found[0].name
    by_mac = [p for p in snap.paths if p.mac == low]
    by_tap = [
        p for p in snap.paths if any(h.dev == k and h.role in ("tap", "macvtap") for h in p.hops)
    ]
    by_vm = [p for p in snap.paths if p.vm == k]
    for cands in (by_mac, by_tap, by_vm):
        if cands:
            live = [p for p in cands if capture_hops(p)]
            if live:
                return live[0], None
            return None, f"{k}: nothing to capture: {cands[0].verdict}"
    known = ", ".join(sorted({v.name for v in snap.vms})) or "none"
    return None, f"no VM, tap or MAC {shorten(k)!r} on this host (known VMs: {known})"


def _resolver(uri: str | None) -> Callable[[str], NicPath | None]:
    def resolve(mac: str) -> NicPath | None:
        snap = _read_host(uri)
        for p in snap.paths:
            if p.mac == mac.lower() and capture_hops(p):
                return p
        return None

    return resolve


def _session(
    args: argparse.Namespace, extra_filter: str | None, sink: FrameSink | None = None
) -> tuple[CaptureSession | None, int]:
    uri = getattr(args, "connect", None)
    snap = _read_host(uri)
    path, why = select_path(snap, str(args.vm))
    if path is None:
        _err(why or "no path")
        return None, 2 if why and why.startswith("no VM") else 1
    vm_by_mac = {n.mac: v.name for v in snap.vms for n in v.nics}
    try:
        sess = CaptureSession(
            path, bpf_filter=extra_filter, resolve=_resolver(uri), networks=snap.networks,
            vm_by_mac=vm_by_mac, sink=sink,
        )  # fmt: skip
        sess.start()
    except BpfError as exc:
        _err(str(exc))
        return None, 2
    except CaptureError as exc:
        _err(str(exc))
        return None, 1
    hops = ", ".join(f"{h.role} {h.dev}" for _, h in capture_hops(path))
    print(f"kvmtui: capturing {path.vm} ({path.mac}, {path.mode}) on {hops}", file=sys.stderr)
    return sess, 0


def row_json(r: PacketRow) -> dict[str, Any]:
    f = r.frame
    nat = None
    if r.nat is not None:
        nat = {
            "from": r.nat.from_,
            "to": r.nat.to,
            "conntrack": r.nat.conntrack,
            "conntrack_detail": r.nat.conntrack_detail,
        }
    return {
        "seq": r.seq,
        "time": r.time_ns / 1e9,
        "direction": r.direction,
        "hops": [
            {
                "dev": s.dev,
                "role": s.role,
                "time": s.time_ns / 1e9,
                "offset_us": round((s.time_ns - r.time_ns) / 1000, 3),
                "outgoing": s.outgoing,
                "vlan": list(s.frame.vlans),
            }
            for s in r.hops
        ],
        "src": f.src_ip or f.src_mac,
        "dst": f.dst_ip or f.dst_mac,
        "src_mac": f.src_mac,
        "dst_mac": f.dst_mac,
        "proto": f.proto,
        "vlan": list(f.vlans),
        "sport": f.sport,
        "dport": f.dport,
        "summary": r.summary,
        "nat": nat,
        "expected": list(r.expected),
        "missing": list(r.missing),
        "stopped": r.stopped,
        "fate": r.fate.as_json() if r.fate is not None else None,
    }


def row_text(r: PacketRow) -> str:
    ts = datetime.fromtimestamp(r.time_ns / 1e9).strftime("%H:%M:%S.%f")
    hops = ", ".join(
        f"{s.dev} +{us:.0f}us"
        + (f" {s.frame.vlan_label}" if s.frame.vlans != r.frame.vlans else "")
        for s, (_dev, us) in zip(r.hops, r.offsets_us(), strict=True)
    )
    line = f"{ts} {r.direction:<3} {r.summary}  [{hops}]"
    if r.nat is not None:
        ok = {True: "conntrack agrees", False: "conntrack disagrees", None: "not checked"}
        line += f"  NAT {r.nat.from_} -> {r.nat.to} ({ok[r.nat.conntrack]})"
    if r.stopped:
        line += f"  !! {r.stopped}"
    if r.fate is not None:
        line += f"  !! {r.fate.words or r.fate.reason} ({r.fate.reason} in {r.fate.location})"
    return line


def _events(batch: CaptureBatch, out: TextIO) -> None:
    for e in batch.events:
        print(f"kvmtui: {e.message}", file=out)


FATE_WAIT_POLLS = 3  # a lost row waits up to this many polls (0.1 s each) for the kernel's word


REORDER_NS = 100_000_000  # beyond the correlator's window: no older row can still come


def _ready(waiting: list[list[Any]], now_ns: int, window_ns: int, tracing: bool) -> int:
    """How many rows at the head of ``waiting`` (sorted by time) can go out in time order: a
    row goes once no older one can still come (the correlator holds an incomplete packet up
    to its window, so a row finished later may be older) and, when tracing, once it stopped
    waiting for its drop reason; the rest wait behind it."""
    ready = 0
    for r, tries in waiting:
        if now_ns - r.time_ns < window_ns + REORDER_NS or (tracing and _awaits_fate(r, tries)):
            break
        ready += 1
    return ready


def _awaits_fate(row: PacketRow, tries: int) -> bool:
    """A row that went missing on the path, with no drop reason yet and polls left to wait."""
    return tries < FATE_WAIT_POLLS and row.fate is None and bool(row.missing or row.dead_end)


class _Stopped(Exception):
    """SIGTERM or SIGHUP during a trace: end it like Ctrl-C, with the file and the summary."""


def _stop_on(signum: int, _frame: object) -> None:
    raise _Stopped(signal.Signals(signum).name)


def _open_pcap(args: argparse.Namespace) -> tuple[PcapngStream | None, int]:
    """The --pcap stream, opened (and checked) before anything is captured."""
    from kvmtui.capture.pcapng import ExportRefused
    from kvmtui.capture.pcapstream import PcapngStream

    pcap = str(args.pcap)
    max_mb = getattr(args, "pcap_max", None)
    try:
        stream = PcapngStream(
            pcap,
            overwrite=bool(getattr(args, "overwrite", False)),
            max_bytes=int(max_mb * 1_000_000) if max_mb else None,
            files=getattr(args, "pcap_files", None),
        )
    except ExportRefused as exc:
        _err(shorten(str(exc), 200))
        return None, 2
    except OSError as exc:
        _err(shorten(f"cannot write {pcap}: {exc.strerror or exc}", 200))
        return None, 2
    return stream, 0


def run_trace(args: argparse.Namespace) -> int:
    flt = getattr(args, "filter", None)
    if flt:
        bad = check_filter(flt)
        if bad:
            _err(bad)
            return 2
    pcap = getattr(args, "pcap", None)
    if getattr(args, "pcap_files", None) and not getattr(args, "pcap_max", None):
        _err("--pcap-files needs --pcap-max (files rotate at that size, like tcpdump -W with -C)")
        return 2
    if pcap:
        from kvmtui.capture.pcapng import ExportRefused, check_export_path

        try:  # refused now, not after the whole capture
            check_export_path(str(pcap), bool(getattr(args, "overwrite", False)))
        except ExportRefused as exc:
            _err(shorten(str(exc), 200))
            return 2
    out = sys.stderr if pcap == "-" else sys.stdout  # '-': the pcapng goes to stdout
    old = {s: signal.signal(s, _stop_on) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _trace(args, flt, out)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _trace(args: argparse.Namespace, flt: str | None, out: TextIO) -> int:
    stream: PcapngStream | None = None
    if getattr(args, "pcap", None):  # opened before the capture: the engine writes every frame
        stream, code = _open_pcap(args)
        if stream is None:
            return code
    from kvmtui.capture.flowstats import FlowStats, Tee

    flow_stats = FlowStats() if getattr(args, "stats", False) else None
    sink = Tee(stream, flow_stats) if stream is not None and flow_stats is not None else None
    sess, code = _session(args, flt, sink=sink or stream or flow_stats)
    if sess is None:
        if stream is not None:
            stream.discard()  # nothing was captured: no empty file left behind
        return code
    from kvmtui.doctor.fate import FateTracker  # the kernel's drop reasons (tracefs)

    fates = FateTracker(sess.path).start()
    if fates.note:
        print(f"kvmtui: {fates.note}", file=sys.stderr)
    count = max(1, int(getattr(args, "count", 10) or 10))
    deadline = time.monotonic() + float(getattr(args, "timeout", 30.0) or 30.0)
    as_json = bool(getattr(args, "json", False))
    printed = 0
    lost = 0
    last = None
    stopped_by = ""
    waiting: list[list[Any]] = []  # [row, polls it waited for its fate]
    try:
        while printed < count and time.monotonic() < deadline:
            time.sleep(0.1)
            batch = last = sess.poll()
            lost += batch.lost_rows
            _events(batch, sys.stderr)
            waiting.extend([r, 0] for r in batch.rows)
            waiting.sort(key=lambda w: w[0].time_ns)  # rows of later polls may be older
            # a lost packet's drop may reach the trace buffer a poll later: the rows still
            # without one are asked again, all in one go (one sync of the trace buffer)
            ask = [w for w in waiting if _awaits_fate(w[0], w[1])]
            for w, r in zip(ask, fates.annotate([w[0] for w in ask]), strict=True):
                w[0] = r
                w[1] += 1
            ready = _ready(waiting, time.time_ns(), sess.window_ns, fates.tracing)
            rows = [r for r, _ in waiting[:ready]]
            del waiting[:ready]
            for r in rows:
                if printed >= count:
                    break
                print(json.dumps(row_json(r)) if as_json else row_text(r), file=out, flush=True)
                printed += 1
            if not batch.running and sess.error:
                _err(sess.error)
                break
    except KeyboardInterrupt:
        stopped_by = "Ctrl-C"
    except _Stopped as exc:
        stopped_by = str(exc)
    finally:
        fates.stop()
        sess.stop()
    for r, _ in waiting:  # the rows still waiting for their fate when the trace ended
        if printed >= count:
            break
        print(json.dumps(row_json(r)) if as_json else row_text(r), file=out, flush=True)
        printed += 1
    if stream is not None:  # the engine wrote every frame and named its rows; it has stopped
        with contextlib.suppress(_Stopped, KeyboardInterrupt):
            stream.close()
    if stopped_by:
        print(f"kvmtui: stopped by {stopped_by}", file=sys.stderr)
    if last is not None:
        stats = ", ".join(f"{h.dev} {h.received} seen/{h.dropped} dropped" for h in last.hops)
        print(f"kvmtui: {printed} packets; kernel counters: {stats}", file=sys.stderr)
    if lost:
        print(
            f"kvmtui: {lost} rows came faster than they were read and are not shown",
            file=sys.stderr,
        )
    if last is not None and last.skipped:
        kept = " (the pcapng file has them)" if stream is not None else ""
        print(
            f"kvmtui: {last.skipped} of {last.packets} frames came too fast to be followed "
            f"hop by hop and are not rows{kept}",
            file=sys.stderr,
        )
    if flow_stats is not None:  # every frame counted, whatever the rows sampled
        from kvmtui.capture.flowstats import stats_json, stats_text

        hops, flows = flow_stats.result()
        if as_json:
            print(json.dumps(stats_json(hops, flows)), file=out, flush=True)
        else:
            print(stats_text(hops, flows), file=sys.stderr)

    if stream is not None:
        files = ", ".join(stream.names)
        print(
            f"kvmtui: wrote {stream.frames} frames to {files} (pcapng, one interface per hop)",
            file=sys.stderr,
        )
        if stream.error:
            _err(shorten(stream.error, 200))
            return 1
    if printed == 0:
        _err(f"no packet of {args.vm} seen in {getattr(args, 'timeout', 30.0)} s")
        return 1
    return 0
