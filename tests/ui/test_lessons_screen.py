"""The Lessons screen: lab only, en/vi, Enter runs the experiment in a worker and opens the view.
The lessons and trigger are fakes from the contract (kvmtui.lab.lessons is the lab engineer's)."""

from __future__ import annotations

import threading

from textual.widgets import Static

from kvmtui.ui.screens.lessons import LessonsScreen
from kvmtui.ui.screens.switch import SwitchScreen
from tests.ui.conftest import make_app
from tests.ui.helpers import loaded, wait_for
from tests.ui.sample import FakeSwitch, sample_lessons


async def test_lessons_off_the_lab_say_so_in_one_line() -> None:
    app = make_app(lab=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LessonsScreen))
        body = str(app.screen.query_one("#lessons-body", Static).render())
        assert "on the lab only" in body


async def test_lessons_switch_language_and_run() -> None:
    ran: list[tuple[str, str]] = []
    on_ui_thread: list[bool] = []
    main = threading.current_thread()

    def trigger(prefix: str, name: str) -> str:
        on_ui_thread.append(threading.current_thread() is main)
        ran.append((prefix, name))
        return "flushed virbr0's FDB; pinged from nat-light\n"

    app = make_app(
        lab="kvu1-", lessons=sample_lessons(), trigger=trigger, switch_factory=FakeSwitch([])
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LessonsScreen))
        body = app.screen.query_one("#lessons-body", Static)
        assert "forwards a frame only to the port" in str(body.render())
        await pilot.press("v")
        await wait_for(pilot, lambda: "chỉ chuyển khung" in str(body.render()))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SwitchScreen))
        assert ran == [("kvu1-", "mac-learning")] and on_ui_thread == [False]
        assert app.screen.bridge == "virbr0"  # type: ignore[attr-defined]
