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
    watching: list[bool] = []  # the proving view was open, its capture started, at the trigger
    main = threading.current_thread()
    switch = FakeSwitch([])

    def trigger(prefix: str, name: str) -> str:
        on_ui_thread.append(threading.current_thread() is main)
        watching.append(isinstance(app.screen, SwitchScreen) and switch.started.is_set())
        ran.append((prefix, name))
        return "flushed virbr0's FDB; pinged from nat-light\n"

    app = make_app(lab="kvu1-", lessons=sample_lessons(), trigger=trigger, switch_factory=switch)
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
        assert app.screen.bridge == "virbr0"  # type: ignore[attr-defined]
        # the switch view watches first: the flood right after the FDB flush is its proof
        await wait_for(pilot, lambda: ran, timeout=10)
        assert ran == [("kvu1-", "mac-learning")] and on_ui_thread == [False]
        assert watching == [True]
        # what the experiment did is said over the view
        await wait_for(pilot, lambda: any("flushed virbr0's FDB" in n.message
                                          for n in app._notifications))  # fmt: skip


async def test_a_static_view_opens_after_its_experiment() -> None:
    order: list[str] = []

    def trigger(prefix: str, name: str) -> str:
        order.append(f"ran {name} on {type(app.screen).__name__}")
        return "iso-a pinged 198.51.100.1: no reply"

    app = make_app(lab="kvu1-", lessons=sample_lessons(), trigger=trigger)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LessonsScreen))
        await pilot.press("down", "enter")  # host-only: the doctor's view of iso-a
        await wait_for(pilot, lambda: order and not isinstance(app.screen, LessonsScreen))
        assert order == ["ran host-only on LessonsScreen"]


async def test_the_dhcp_lesson_opens_the_capture_on_its_dhcp_view() -> None:
    """Who gives DHCP is shown by the DHCP view (Discover/Offer/Request/Ack and the server),
    not the packet list: the lesson's capture opens on it."""
    from textual.widgets import ContentSwitcher

    from kvmtui.lab.lessonmodel import Lesson
    from kvmtui.ui.screens.capture import CaptureScreen

    dhcp = Lesson("dhcp", "2", {"en": "Who gives DHCP", "vi": "Ai cấp DHCP"},
                  {"en": "libvirt's dnsmasq answers on virbr0", "vi": "dnsmasq của libvirt"},
                  {"en": "a fresh DORA", "vi": "DORA"}, "dhcp", vm="nat-light")  # fmt: skip
    app = make_app(lab="kvu1-", lessons=(*sample_lessons(), dhcp), trigger=lambda p, n: "")
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LessonsScreen))
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CaptureScreen), timeout=10)
        switcher = app.screen.query_one(ContentSwitcher)
        await wait_for(pilot, lambda: switcher.current == "dhcp")
