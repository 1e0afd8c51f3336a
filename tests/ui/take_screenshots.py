"""Write SVG screenshots of every screen to screenshots/ (for the README).

    .venv/bin/python -m tests.ui.take_screenshots                 # on the sample snapshot
    .venv/bin/python -m tests.ui.take_screenshots --lab kvdev-    # on a running lab, LiveHost
    .venv/bin/python -m tests.ui.take_screenshots --lab kve- --only switch,doctor

Names: ``{source}-{screen}-{W}x{H}.svg``, e.g. ``lab-macs-80x24.svg``. ``--only`` takes screen
names (``switch`` also takes ``switch-wide``); without it every screen is taken. On the lab, the
doctor shots are taken with the ``forward-drop`` break applied (``kvmtui lab fix`` after), the
switch shots while the mac-learning experiment runs (a flood, then forwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from kvmtui.lab import spec
from kvmtui.ui.app import KvmApp
from kvmtui.ui.widgets.path_view import PathView
from tests.ui.conftest import make_app
from tests.ui.helpers import wait_for
from tests.ui.sample import (
    NAT_LIGHT,
    FakeSwitch,
    empty_snapshot,
    problem_snapshot,
    sample_diagnosis,
    sample_lessons,
    switch_batches,
)

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "screenshots"

# (screen name, keys, size)
SCREENS: list[tuple[str, list[str], tuple[int, int]]] = [
    ("host", ["j", "j", "j", "j"], (80, 24)),
    ("host-wide", ["j", "j"], (160, 40)),
    ("macs", ["2"], (80, 24)),
    ("macs-filter", ["2", "slash", *"vnet", "enter"], (80, 24)),
    ("networks", ["3"], (80, 24)),
    ("networks-wide", ["3", "j"], (160, 40)),
    ("vms", ["4", "j", "j"], (80, 24)),
    ("vms-wide", ["4", "j", "j", "j", "j"], (140, 36)),
    ("help", ["2", "f1"], (80, 24)),
    ("capture", ["4", "j", "j", "c"], (100, 30)),
    ("palette", ["ctrl+p", *"go to"], (100, 30)),
]


Then = Callable[[Pilot[None], KvmApp], Awaitable[None]]


async def shoot(make: Callable[[], KvmApp], name: str, keys: list[str],
                size: tuple[int, int], then: Then | None = None) -> Path:  # fmt: skip
    app = make()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=20)
        await pilot.pause(1.2)  # rates need two counter polls
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.05)
        if then is not None:
            await then(pilot, app)  # type: ignore[arg-type]
        await pilot.pause(0.5)
        for view in app.screen.query(PathView):
            await wait_for(pilot, lambda v=view: v.drawn is not None or v._path is None)  # type: ignore[misc]
        path = OUT / f"{name}-{size[0]}x{size[1]}.svg"
        app.save_screenshot(filename=path.name, path=str(OUT))
        return path


async def main_async(lab_prefix: str | None, only: set[str] | None = None) -> None:
    OUT.mkdir(exist_ok=True)

    def wanted(name: str) -> bool:
        return only is None or name in only or name.removesuffix("-wide") in only

    if lab_prefix:
        from kvmtui.core.live import LiveHost

        def make() -> KvmApp:
            src = LiveHost(uri=spec.libvirt_uri(lab_prefix), netns=lab_prefix + spec.NS_HOST)
            return KvmApp(src, poll_s=0.5)

        source = "lab"
    else:

        def make() -> KvmApp:
            return make_app(poll_s=0.5)

        source = "sample"
    for name, keys, size in SCREENS:
        if wanted(name):
            print(await shoot(make, f"{source}-{name}", keys, size))
    if not lab_prefix and only is None:
        print(await shoot(lambda: make_app(problem_snapshot()), "sample-problems", [], (80, 24)))
        print(await shoot(lambda: make_app(empty_snapshot()), "sample-empty-host", [], (80, 24)))
        present = await shoot(lambda: make_app(start_theme="presenter", poll_s=0.5),
                              "sample-presenter-vms", ["4", "j"], (80, 24))  # fmt: skip
        print(present)
    shots = [shot for shot in new_screens(lab_prefix) if wanted(shot[0])]
    doctors = [shot[0] for shot in shots if "doctor" in shot[0]]
    if lab_prefix and doctors and not in_lab_host(lab_prefix):
        # the doctor reads what the snapshot has not (the firewall, sysctls, which dnsmasq runs
        # in this namespace) where it runs: its shots are taken inside the lab's KVM host
        shots = [shot for shot in shots if shot[0] not in doctors]
        print(lab_cli(lab_prefix, "exec", "--", sys.executable, "-m", "tests.ui.take_screenshots",
                      "--lab", lab_prefix, "--only", ",".join(doctors)), end="")  # fmt: skip
        doctors = []
    if lab_prefix and doctors:
        lab_cli(lab_prefix, "break", BREAK)
    try:
        for name, keys, size, make_new, *then in shots:
            print(await shoot(make_new, f"{source}-{name}", keys, size, *then))
    finally:
        if lab_prefix and doctors:
            lab_cli(lab_prefix, "fix")


BREAK = "forward-drop"  # the lab's doctor shots: the README's example of a firewall break


def in_lab_host(prefix: str) -> bool:
    here = os.stat("/proc/self/ns/net").st_ino
    return here == os.stat(f"/run/netns/{prefix}{spec.NS_HOST}").st_ino


def lab_cli(prefix: str, *args: str) -> str:
    cp = subprocess.run([sys.executable, "-m", "kvmtui", "lab", "--prefix", prefix, *args],
                        capture_output=True, text=True, timeout=300, cwd=ROOT)  # fmt: skip
    if cp.returncode != 0:
        raise SystemExit(f"kvmtui lab {' '.join(args)}: {cp.stderr.strip()}")
    return cp.stdout


def lab_switch(prefix: str) -> Then:
    """The switch view of virbr1 while the mac-learning experiment runs (iso-b's FDB entry
    deleted, iso-a pings it), again until a flood shows; the cursor on the flood, whose words
    the detail pane says."""

    async def then(pilot: Pilot[None], app: KvmApp) -> None:
        from kvmtui.lab import lessons
        from kvmtui.ui.screens.switch import SwitchScreen
        from kvmtui.ui.widgets.line_table import LineTable

        app.selected_bridge = spec.ISO_BRIDGE
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SwitchScreen)
                       and app.screen.state == "capturing", timeout=10)  # fmt: skip
        screen = app.screen
        assert isinstance(screen, SwitchScreen)
        table = screen.query_one(LineTable)

        def floods() -> list[int]:
            rows = [table.get_row(k) for k in table.row_keys]
            return [i for i, r in enumerate(rows) if r[3].strip() == "flood"]

        for _attempt in range(4):
            await asyncio.to_thread(lessons.trigger, prefix, "mac-learning")
            await pilot.pause(1.0)
            if floods():
                break
        else:
            raise SystemExit("no flood in four runs of the mac-learning experiment")
        screen.follow = False
        table.move_cursor(row=floods()[-1])
        await pilot.pause(0.3)

    return then


def new_screens(lab_prefix: str | None) -> list[tuple[Any, ...]]:
    """The doctor, switch and lessons screens. On the sample: fakes from their contracts (a
    nat-light whose tap is down; two switch batches, the second a sampled flood). On the lab: the
    real doctor engine, switch session and lessons when they are installed."""
    if lab_prefix:
        from kvmtui.core.live import LiveHost

        def doctor(snap):  # type: ignore[no-untyped-def]
            from kvmtui.doctor.engine import diagnose_host

            return diagnose_host(snap, uri=spec.libvirt_uri(lab_prefix))

        def lab_app(**kw: object) -> Callable[[], KvmApp]:
            def make() -> KvmApp:
                src = LiveHost(uri=spec.libvirt_uri(lab_prefix), netns=lab_prefix + spec.NS_HOST)
                return KvmApp(src, poll_s=0.5, doctor=doctor, lab=lab_prefix, **kw)  # type: ignore[arg-type]

            return make

        return [
            ("doctor", ["d"], (80, 24), lab_app(start_vm="nat-light")),
            ("doctor-wide", ["d"], (160, 40), lab_app(start_vm="nat-light")),
            ("host-doctor", ["D"], (80, 24), lab_app()),
            ("lessons-en", ["L"], (80, 24), lab_app()),
            ("lessons-vi", ["L", "down", "down", "down", "down"], (80, 24), lab_app(lang="vi")),
            ("switch", [], (80, 24), lab_app(), lab_switch(lab_prefix)),
            ("switch-wide", [], (160, 40), lab_app(), lab_switch(lab_prefix)),
        ]
    tap = NAT_LIGHT.tap

    def broken() -> KvmApp:
        return make_app(poll_s=0.5, doctor=lambda s: sample_diagnosis(s, broken_tap=tap),
                        doctor_every_s=0.0)  # fmt: skip

    def switch() -> KvmApp:
        app = make_app(poll_s=0.5, switch_factory=FakeSwitch(switch_batches()))
        app.selected_bridge = "virbr0"
        return app

    def lessons(lang: str) -> Callable[[], KvmApp]:
        return lambda: make_app(poll_s=0.5, lab=spec_prefix(), lessons=sample_lessons(),
                                trigger=lambda p, n: "", lang=lang)  # fmt: skip

    return [
        ("doctor", ["4", "j", "j", "d"], (80, 24), broken),
        ("vms-verdict", ["4", "j", "j"], (80, 24), broken),
        ("host-doctor", ["D"], (80, 24), broken),
        ("switch", ["1", "s"], (80, 24), switch),
        ("lessons-en", ["L"], (80, 24), lessons("en")),
        ("lessons-vi", ["L", "j"], (80, 24), lessons("vi")),
    ]


def spec_prefix() -> str:
    return "kvdev-"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--lab", metavar="PREFIX", default=None)
    p.add_argument("--only", metavar="NAMES", default=None, help="comma-separated screen names")
    args = p.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else None
    asyncio.run(main_async(args.lab, only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
