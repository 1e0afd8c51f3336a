"""``kvmtui switch BRIDGE``: one line per frame crossing a bridge (in port, out ports, decision
and the FDB entry behind it), FDB events between them, exact per-port counts at the end.

Exit codes: 0 frames seen, 1 none in the timeout (or cannot capture), 2 unknown bridge.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from kvmtui.capture.switchmodel import FdbEvent, PortCount, SwitchRow, out_cell


def _err(msg: str) -> None:
    print(f"kvmtui: {msg}", file=sys.stderr)


def row_json(r: SwitchRow) -> dict[str, Any]:
    return {
        "type": "frame", "seq": r.seq, "time": r.time_ns / 1e9, "in_port": r.in_port,
        "out_ports": list(r.out_ports), "decision": r.decision, "src": r.src, "dst": r.dst,
        "src_mac": r.src_mac, "dst_mac": r.dst_mac, "proto": r.proto, "summary": r.summary,
        "because": r.because,
    }  # fmt: skip


def event_json(e: FdbEvent) -> dict[str, Any]:
    return {"type": "fdb", "time": e.time_ns / 1e9, "event": e.kind, "mac": e.mac,
            "port": e.port, "text": e.text}  # fmt: skip


def row_text(r: SwitchRow, t0: int) -> str:
    outs = out_cell(r) if r.out_ports else "-"
    head = f"{(r.time_ns - t0) / 1e9:6.2f} {r.in_port:>6}>{outs:<13} {r.decision:<9}"
    return f"{head} {r.proto} {r.src} > {r.dst}\n{'':7}{r.because}"


def counts_text(counts: tuple[PortCount, ...]) -> str:
    parts = [f"{c.port} in {c.rx_frames} out {c.tx_frames}" + (f" drop {c.dropped}" if c.dropped
             else "") for c in counts]  # fmt: skip
    return "frames per port (exact): " + "; ".join(parts)


def run_switch(args: argparse.Namespace) -> int:
    from kvmtui.capture.ring import CaptureError
    from kvmtui.capture.switch import SwitchSession
    from kvmtui.core.resolve import shorten
    from kvmtui.core.snapshot import read_host

    snap = read_host(uri=getattr(args, "connect", None))
    br = snap.bridge(str(args.bridge))
    if br is None:
        known = ", ".join(sorted(b.name for b in snap.bridges)) or "none"
        _err(f"no bridge {shorten(str(args.bridge))!r} on this host (bridges: {known})")
        return 2
    sess = SwitchSession(br, snap)
    try:
        sess.start()
    except CaptureError as exc:
        _err(str(exc))
        return 1
    ports = ", ".join(sess.devs)
    _err(f"watching {br.name} on {ports} (the bridge device stands for the host)")
    as_json = bool(getattr(args, "json", False))
    count, timeout = int(args.count), float(args.timeout)
    deadline = time.monotonic() + timeout
    seen, t0 = 0, 0
    sampled = False
    counts: tuple[PortCount, ...] = ()
    try:
        while seen < count and time.monotonic() < deadline:
            batch = sess.poll()
            counts, sampled = batch.counts, sampled or batch.sampled
            items: list[tuple[int, SwitchRow | FdbEvent]] = [(r.time_ns, r) for r in batch.rows]
            items += [(e.time_ns, e) for e in batch.events]
            items.sort(key=lambda x: x[0])
            for t, item in items:
                if seen >= count:
                    break
                t0 = t0 or t
                if isinstance(item, SwitchRow):
                    seen += 1
                    print(json.dumps(row_json(item)) if as_json else row_text(item, t0))
                else:
                    print(json.dumps(event_json(item)) if as_json else
                          f"{(t - t0) / 1e9:7.3f} fdb: {item.text}")  # fmt: skip
            sys.stdout.flush()
            if not batch.running:
                break
    except KeyboardInterrupt:
        pass
    finally:
        sess.stop()
    _err(counts_text(counts) + (" (rows were a sample)" if sampled else ""))
    if seen == 0:
        _err(f"no frame crossed {br.name} in {timeout:g} s")
        return 1
    return 0
