"""Write SVG screenshots of every screen to screenshots/ (for the README).

    .venv/bin/python -m tests.ui.take_screenshots                 # on the sample snapshot
    .venv/bin/python -m tests.ui.take_screenshots --lab kvdev-    # on a running lab, LiveHost

Names: ``{source}-{screen}-{W}x{H}.svg``, e.g. ``lab-macs-80x24.svg``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

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


async def shoot(make: Callable[[], KvmApp], name: str, keys: list[str],
                size: tuple[int, int]) -> Path:  # fmt: skip
    app = make()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=20)
        await pilot.pause(1.2)  # rates need two counter polls
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        for view in app.screen.query(PathView):
            await wait_for(pilot, lambda v=view: v.drawn is not None or v._path is None)  # type: ignore[misc]
        path = OUT / f"{name}-{size[0]}x{size[1]}.svg"
        app.save_screenshot(filename=path.name, path=str(OUT))
        return path


async def main_async(lab_prefix: str | None) -> None:
    OUT.mkdir(exist_ok=True)
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
        print(await shoot(make, f"{source}-{name}", keys, size))
    if not lab_prefix:
        print(await shoot(lambda: make_app(problem_snapshot()), "sample-problems", [], (80, 24)))
        print(await shoot(lambda: make_app(empty_snapshot()), "sample-empty-host", [], (80, 24)))
        present = await shoot(lambda: make_app(start_theme="presenter", poll_s=0.5),
                              "sample-presenter-vms", ["4", "j"], (80, 24))  # fmt: skip
        print(present)
    for name, keys, size, make_new in new_screens(lab_prefix):
        print(await shoot(make_new, f"{source}-{name}", keys, size))


def new_screens(
    lab_prefix: str | None,
) -> list[tuple[str, list[str], tuple[int, int], Callable[[], KvmApp]]]:
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
            ("doctor", ["4", "j", "j", "d"], (80, 24), lab_app()),
            ("host-doctor", ["D"], (80, 24), lab_app()),
            ("lessons-en", ["L"], (80, 24), lab_app()),
            ("lessons-vi", ["L", "j"], (80, 24), lab_app(lang="vi")),
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
    args = p.parse_args()
    asyncio.run(main_async(args.lab))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
