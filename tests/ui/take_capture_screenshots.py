"""SVG screenshots of the capture view and its DHCP view at 80x24, for the README.

    .venv/bin/python -m tests.ui.take_capture_screenshots                # the sample capture
    .venv/bin/python -m tests.ui.take_capture_screenshots --lab kvu2-    # a running lab

Writes ``screenshots/capture-80x24.svg`` and ``screenshots/dhcp-80x24.svg``. On the lab, the
capture screen of nat-light is opened through LiveHost, nat-light pings the fake Internet, and
a fresh DHCP exchange is triggered the way its own client would do one: SIGUSR2 (release) then
SIGUSR1 (ask again) to its udhcpc. Without ``--lab``, the sample capture of the snapshot tests
(rows made by the real correlator and DHCP tracker, clock frozen).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "screenshots"
SIZE = (80, 24)


async def sample_shots() -> None:
    from tests.ui.test_capture_screen import _snap_app

    for view, name in (("packets", "capture-80x24.svg"), ("dhcp", "dhcp-80x24.svg")):
        app, run_before = _snap_app(view)
        async with app.run_test(size=SIZE) as pilot:
            await run_before(pilot)
            app.save_screenshot(filename=name, path=str(OUT))
        print(OUT / name)


def udhcpc_pid(prefix: str, vm: str) -> int:
    import psutil

    tag = f"/{prefix.rstrip('-')}/vms/{vm}/udhcpc.sh"
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "udhcpc" in cmd and any(tag in c for c in cmd):
            return int(p.pid)
    raise SystemExit(f"no udhcpc of {vm} in lab {prefix}: is the lab up?")


async def lab_shots(prefix: str) -> None:
    from kvmtui.lab import spec
    from kvmtui.lab.handle import LabHandle
    from kvmtui.ui.widgets.capture_dhcp import CaptureDhcp
    from tests.ui.helpers import wait_for
    from tests.ui.test_capture_screen import (
        NAT_LIGHT,
        PING_SIZE,
        _ours,
        lab_app,
        lab_capture,
        table_of,
    )

    lab: Any = LabHandle.for_prefix(prefix, False)
    ip = await asyncio.to_thread(lab.wait_ip, NAT_LIGHT.name)
    app = lab_app(lab)
    async with app.run_test(size=SIZE) as pilot:
        screen = await lab_capture(pilot, NAT_LIGHT.mac)
        pid = udhcpc_pid(prefix, NAT_LIGHT.name)
        os.kill(pid, signal.SIGUSR2)  # release ...
        await asyncio.sleep(0.5)
        os.kill(pid, signal.SIGUSR1)  # ... and ask again: Discover, Offer, Request, Ack
        view = screen.query_one(CaptureDhcp)

        def fresh() -> Any:
            return next((tx for tx in screen.model.tx.values() if tx.acked and any(
                m.type == "discover" for m in tx.messages)), None)  # fmt: skip

        try:
            await wait_for(pilot, lambda: fresh() is not None, timeout=30)
        except AssertionError:
            raise SystemExit(
                f"no DORA seen; transactions: {list(screen.model.tx.values())}"
            ) from None
        keys = list(screen.model.tx)
        view.table.move_cursor(row=keys.index(next(k for k, v in screen.model.tx.items()
                                                   if v is fresh())))  # fmt: skip
        await asyncio.to_thread(lab.wait_ip, NAT_LIGHT.name)
        await asyncio.to_thread(
            lab.run, lab.vm_ns(NAT_LIGHT.name), "busybox", "ping", "-c", "2", "-i", "0.3",
            "-W", "2", "-s", str(PING_SIZE), spec.INTERNET_IP,
        )  # fmt: skip
        await wait_for(pilot, lambda: len(_ours(screen, ip, spec.INTERNET_IP)) >= 2, timeout=10)
        t = table_of(screen)
        key, _ = _ours(screen, ip, spec.INTERNET_IP)[0]
        t.follow = False
        t.move_cursor(row=t.keys.index(key))
        await pilot.pause(0.5)
        app.save_screenshot(filename="capture-80x24.svg", path=str(OUT))
        await pilot.press("2")
        await wait_for(pilot, lambda: view.table.has_focus)
        await pilot.pause(0.3)
        app.save_screenshot(filename="dhcp-80x24.svg", path=str(OUT))
    print(OUT / "capture-80x24.svg", OUT / "dhcp-80x24.svg", sep="\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", metavar="PREFIX", help="take them on this running lab")
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    asyncio.run(lab_shots(a.lab) if a.lab else sample_shots())


if __name__ == "__main__":
    main()
