"""Key-press latency in the capture view while a flood crosses the captured bridge.

    python bench/ui_capture.py [--packets N] [--seconds S] [--presses N]

Builds three namespaces of its own (prefix ``kvbenchui-``): a sender, a bridge namespace
(bridge ``bbr0`` with ports ``p0`` -- the "VM's tap" -- and ``p1``) and a sink. The capture
screen runs headless (Textual's test driver) over a REAL ``CaptureSession`` on the tap and the
bridge (two hops, correlated), in the bridge's namespace. A small C generator (the one of
bench/capture.py, compiled at bench time) floods 64-byte UDP frames from the sender's MAC,
bounded by a packet count and a time limit.

Measured, idle and during the flood: the time from a key press to the screen showing its
effect (press, wait until the widget changed, then one refresh):
- ``j``/``k``: cursor movement in the packet list;
- ``p``: the protocol filter cycled (the table is rebuilt from the kept rows);
- ``2``/``1``: switch to the DHCP view and back.
Also printed: batches handled, rows listed, frames the engine read/skipped, and which Python.
Goal: < 100 ms. Everything is removed at the end; the flood always stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import capture as bench_capture
from bench.capture import GEN_C, sh

P = "kvbenchui-"
NS_SRC, NS_BR, NS_DST = P + "src", P + "br", P + "dst"
SRC_MAC = "52:54:00:be:01:01"
DST_MAC = "52:54:00:be:01:02"


def gen_source() -> str:
    """The flood generator's C source (bench/capture.py's), with our MACs."""
    src = GEN_C.replace("0x52,0x54,0x00,0xbe,0x00,0x02, 0x52,0x54,0x00,0xbe,0x00,0x01",
                        "0x52,0x54,0x00,0xbe,0x01,0x02, 0x52,0x54,0x00,0xbe,0x01,0x01")  # fmt: skip
    assert src != GEN_C, "bench/capture.py's generator changed: update the MAC patch"
    return src


def up() -> None:
    bench_capture.up(P, SRC_MAC, DST_MAC)


def down() -> None:
    bench_capture.down(P)


async def measure(pilot: Any, screen: Any, presses: int) -> dict[str, list[float]]:
    """Milliseconds from each key press to the screen showing its effect."""
    from textual import events

    from kvmtui.ui.widgets.capture_table import CapturePacketTable

    table = screen.query_one(CapturePacketTable)
    out: dict[str, list[float]] = {"j/k": [], "p": [], "2/1": []}

    app = pilot.app

    async def timed(key: str, changed: Any) -> float:
        """The key goes in as the terminal driver delivers it; the time stops when its effect
        is in the widget tree AND the next screen refresh has run (``call_after_refresh``).
        (Pilot.press is not used: it waits for the process to go idle, which it never does
        while the capture thread drains a flood.)"""
        painted = asyncio.Event()
        event = events.Key(key, key)
        event.set_sender(app)
        t0 = time.perf_counter()
        app._driver.send_message(event)  # what a real terminal's driver does with a key
        while not changed():
            if time.perf_counter() - t0 > 10:
                raise SystemExit(f"key {key!r}: no effect on screen within 10 s")
            await asyncio.sleep(0.0005)
        app.call_after_refresh(painted.set)
        await painted.wait()
        return (time.perf_counter() - t0) * 1000

    for i in range(presses):
        table.focus()
        keys, cur = table.keys, table.current_key()
        if len(keys) > 2 and cur in keys:
            if table.follow:  # leave follow mode first (untimed): new rows would move the cursor
                await pilot.press("k")
                keys, cur = table.keys, table.current_key()
            idx = keys.index(cur) if cur in keys else 0
            key, target = ("k", keys[idx - 1]) if idx > 0 else ("j", keys[idx + 1])
            ms = await timed(key, lambda t=target: table.current_key() == t or t not in table.keys)
            if table.current_key() == target:  # else its row aged out meanwhile: no sample
                out["j/k"].append(ms)
        proto = screen.filters.proto
        out["p"].append(await timed("p", lambda p=proto: screen.filters.proto != p))
        if i % 2 == 0:
            out["2/1"].append(await timed("2", lambda: screen.view == "dhcp"))
            out["2/1"].append(await timed("1", lambda: screen.view == "packets"))
        await asyncio.sleep(0.05)
    while screen.filters.proto != "all":  # back to every packet
        await pilot.press("p")
    await pilot.press("G")  # follow again
    return out


def summary(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    s = sorted(xs)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return (f"median {statistics.median(s):.1f} ms, p95 {p95:.1f} ms, max {s[-1]:.1f} ms "
            f"(n={len(s)})")  # fmt: skip


async def run_ui(gen: str, packets: int, seconds: float, presses: int) -> dict[str, Any]:
    from textual.app import App

    from kvmtui.capture.engine import CaptureSession
    from kvmtui.core.model import Hop, NicPath
    from kvmtui.ui.screens.capture import CaptureScreen

    path = NicPath("bench-vm", SRC_MAC, "bridge", (Hop("p0", "tap"), Hop("bbr0", "bridge")),
                   False, "bench: no way out")  # fmt: skip
    sessions: list[CaptureSession] = []

    def factory(p: NicPath, bpf: str | None) -> CaptureSession:
        s = CaptureSession(p, netns=NS_BR, bpf_filter=bpf, conntrack=False,
                           block_size=1 << 22, block_nr=8)  # fmt: skip
        sessions.append(s)
        return s

    class BenchApp(App[None]):
        pass

    app = BenchApp()
    result: dict[str, Any] = {}
    async with app.run_test(size=(120, 34)) as pilot:
        screen = CaptureScreen("bench-vm", SRC_MAC, path, session_factory=factory,
                               lease_checker=lambda tx: None)  # type: ignore[arg-type,return-value]  # fmt: skip
        app.push_screen(screen)
        t = time.monotonic()
        while screen.state == "starting" and time.monotonic() - t < 20:
            await pilot.pause(0.05)
        if screen.state != "capturing":
            raise SystemExit(f"capture did not start: {screen.last_note}")
        # a few packets first, so the list has rows to move through
        sh("ip", "netns", "exec", NS_SRC, gen, "eth0", "300", "5")
        t = time.monotonic()
        while len(screen.shown_rows()) < 50 and time.monotonic() - t < 10:
            await pilot.pause(0.05)
        print("capturing; measuring idle", file=sys.stderr)
        result["idle"] = await measure(pilot, screen, max(3, presses // 3))
        print("idle done; flooding", file=sys.stderr)
        flood = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", NS_SRC, gen, "eth0", str(packets), str(seconds),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.sleep(1.0)  # the flood is on
            b0 = screen.model.batches
            t0 = time.monotonic()
            result["flood"] = await measure(pilot, screen, presses)
            result["flood_window_s"] = time.monotonic() - t0
            result["batches_during"] = screen.model.batches - b0
            out, _ = await asyncio.wait_for(flood.communicate(), timeout=seconds + 30)
            result["sent"] = json.loads(out.decode() or "{}")
        finally:
            if flood.returncode is None:
                flood.kill()
                await flood.wait()
        result["still_flooding_during_measure"] = result["flood_window_s"] < result.get(
            "sent", {}
        ).get("seconds", 0)
        await pilot.pause(0.5)
        result["engine"] = {
            "read": screen.model.packets,
            "skipped": screen.model.skipped,
            "lost_rows": screen.model.lost_rows,
            "not_listed": screen.model.not_shown,
            "hops": [(h.dev, h.received, h.dropped) for h in screen.hops],
        }
        result["rows_listed"] = len(screen.shown_rows())
        result["batch_ms"] = list(screen.batch_ms)
        result["batches"] = screen.model.batches
        await pilot.press("escape")
        await pilot.pause(0.3)
    for s in sessions:
        s.stop()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=3_000_000)
    ap.add_argument("--seconds", type=float, default=15.0, help="flood time limit")
    ap.add_argument("--presses", type=int, default=20)
    ap.add_argument(
        "--switch-interval", type=float, default=None, help="sys.setswitchinterval (s) for the run"
    )
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/ui_capture.py: run as root (namespaces, AF_PACKET)", file=sys.stderr)
        return 1
    if a.switch_interval is not None:
        sys.setswitchinterval(a.switch_interval)
    tmp = tempfile.mkdtemp(prefix="kvbenchui-")

    def stop(*_: object) -> None:
        raise SystemExit("interrupted")  # so that the namespaces are removed (finally)

    signal.signal(signal.SIGTERM, stop)
    try:
        gen = os.path.join(tmp, "gen")
        with open(gen + ".c", "w") as f:
            f.write(gen_source())
        sh("gcc", "-O2", "-o", gen, gen + ".c")
        up()
        r = asyncio.run(asyncio.wait_for(run_ui(gen, a.packets, a.seconds, a.presses), 180))
    finally:
        down()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"python: {sys.executable} {platform.python_version()}; "
          f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms")  # fmt: skip
    sent = r.get("sent", {})
    if sent:
        print(f"flood: {sent['sent']} frames of 64 bytes in {sent['seconds']:.2f} s = "
              f"{sent['sent'] / sent['seconds'] / 1000:.0f}k packets/s through the captured "
              "bridge (tap p0 + bridge bbr0 captured and correlated)")  # fmt: skip
    print(f"presses measured during the flood over {r['flood_window_s']:.1f} s "
          f"(flood still running at the end: {r['still_flooding_during_measure']}); "
          f"{r['batches_during']} batches handled meanwhile")  # fmt: skip
    for phase in ("idle", "flood"):
        for key, xs in r[phase].items():
            goal = "OK" if xs and max(xs) < 100 else "ABOVE 100 ms"
            print(f"  {phase:5} {key:4} key -> screen: {summary(xs)}  [{goal} max]")
    print(f"UI time per batch (whole run): {summary(r['batch_ms'])}")
    e = r["engine"]
    print(f"engine: read {e['read']} frames, not correlated (flood backlog) {e['skipped']}, "
          f"rows lost before a poll {e['lost_rows']}, rows not listed (newest shown) "
          f"{e['not_listed']}; hops (dev, seen, kernel drops) {e['hops']}; "
          f"rows on screen {r['rows_listed']} (bounded)")  # fmt: skip
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
