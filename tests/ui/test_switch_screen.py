"""The switch view (``s`` on a bridge). The session is a fake from the contract (it needs capture
sockets on a real bridge: tests/ui/sample.py FakeSwitch); the test is about the screen."""

from __future__ import annotations

from textual.widgets import Static

from kvmtui.ui.screens.switch import SwitchScreen
from kvmtui.ui.widgets.line_table import LineTable
from tests.ui.conftest import make_app
from tests.ui.helpers import loaded, wait_for
from tests.ui.sample import FakeSwitch, switch_batches


async def test_switch_view_rows_events_counts_and_sampled() -> None:
    fake = FakeSwitch(switch_batches())
    app = make_app(switch_factory=fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.selected_bridge = "virbr0"  # what the Host tree's cursor on virbr0 sets
        await pilot.pause(0.05)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SwitchScreen))
        screen = app.screen
        assert isinstance(screen, SwitchScreen)
        table = screen.query_one(LineTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        got = [table.get_row(k) for k in table.row_keys]
        # time order: the broadcast, the FDB learning event, the reply forwarded to one port
        assert [r[3].strip() for r in got] == ["broadcast", "learned", "forward", "forward"]
        assert got[0][2].strip() == "vnet1,virbr0" and got[2][2].strip() == "vnet0"
        counts = str(screen.query_one("#switch-counts", Static).render())
        assert "vnet0 in 90001" in counts  # the exact count, not the one listed row
        assert screen.has_class("-sampled") and screen.query_one("#switch-sampled").display
        table.move_cursor(row=2)
        detail = screen.query_one("#switch-detail", Static)
        await wait_for(pilot, lambda: "learned on vnet0" in str(detail.render()))
        await pilot.press("escape")
        await wait_for(pilot, lambda: fake.stopped.is_set())
        assert fake.bridge == "virbr0"


async def test_switch_needs_a_bridge() -> None:
    app = make_app(switch_factory=FakeSwitch([]))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("4")  # the VMs tab: no bridge under the cursor, s does nothing
        await pilot.press("s")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, SwitchScreen)
