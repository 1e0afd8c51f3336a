"""The Lessons screen on the real lab: Enter on a lesson opens the view that proves it, and the
experiment runs while that view watches (kvmtui.lab.lessons.trigger, the real one)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kvmtui.lab import spec
from kvmtui.ui.app import KvmApp
from kvmtui.ui.screens.lessons import LessonsScreen
from kvmtui.ui.screens.switch import SwitchScreen
from kvmtui.ui.widgets.line_table import LineTable
from tests.ui.helpers import loaded, wait_for

pytestmark = pytest.mark.lab


def _app(lab: Any) -> KvmApp:
    from kvmtui.core.live import LiveHost

    return KvmApp(LiveHost(uri=lab.uri, netns=lab.host_ns), lab=lab.prefix,
                  keymap_path=Path("/nonexistent/kvmtui-keys.toml"))  # fmt: skip


async def test_mac_learning_from_the_lessons_screen_shows_the_flood(lab: Any) -> None:
    await asyncio.to_thread(lab.wait_ip, "iso-a")  # pyroute2 wants no running event loop
    await asyncio.to_thread(lab.wait_ip, "iso-b")
    b = spec.lab_vm("iso-b")
    app = _app(lab)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LessonsScreen))
        lessons = app.screen
        assert isinstance(lessons, LessonsScreen)
        index = [le.name for le in lessons.lessons].index("mac-learning")
        # iso-b talks by itself every few seconds: when it speaks between the FDB flush and
        # iso-a's first ping, the bridge re-learned it and nothing floods; run it again then
        for _ in range(index):
            await pilot.press("down")
        for _attempt in range(4):
            while not isinstance(app.screen, LessonsScreen):
                await pilot.press("escape")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, SwitchScreen))
            screen = app.screen
            assert isinstance(screen, SwitchScreen) and screen.bridge == spec.ISO_BRIDGE
            table = screen.query_one(LineTable)

            def rows(t: LineTable = table) -> list[tuple[str, ...]]:
                return [tuple(c.strip() for c in t.get_row(k)) for k in t.row_keys]

            # the experiment's flush, said by the FDB feed of the view already watching
            await wait_for(pilot, lambda: any(r[1] == "fdb" and r[3] == "deleted" and b.mac in r[4]
                                              for r in rows()), timeout=15)  # fmt: skip
            await pilot.pause(2.0)  # its four pings
            got = rows()
            gone = next(i for i, r in enumerate(got) if r[3] == "deleted" and b.mac in r[4])
            after = got[gone + 1 :]
            floods = [r for r in after if r[3] == "flood"]
            if floods:
                assert floods[0][2] == f"others: {b.tap}", got
                assert any(r[3] == "forward" and r[2] == b.tap for r in after), got
                return
        raise AssertionError(f"no flood after the flush in four runs: {got}")
