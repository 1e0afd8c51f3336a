"""The switch view (``s`` on a bridge). The session is a fake from the contract (it needs capture
sockets on a real bridge: tests/ui/sample.py FakeSwitch); the test is about the screen."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from kvmtui.capture.switchmodel import SwitchBatch, SwitchRow, flood_words
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


def test_flood_words_say_every_other_port_and_the_hosts_port() -> None:
    ports = ("vnet2", "vnet3")
    two = flood_words("vnet2", ("vnet3",), ports, "virbr1")
    assert two == ("flood: every other port (vnet3); the bridge's own port virbr1 takes "
                   "unknown unicast only when promiscuous")  # fmt: skip
    promisc = flood_words("vnet2", ("vnet3", "virbr1"), ports, "virbr1")
    assert "every other port (vnet3)" in promisc and "virbr1 took it too" in promisc
    # a port that did not take it (flooding off, blocking) is named by what was seen
    three = flood_words("vnet2", ("vnet3",), (*ports, "vnet4"), "virbr1")
    assert three.startswith("flood: every other port (vnet3, vnet4), seen leaving by vnet3 only")
    # from the host itself: every port is an other port, and no word about the host's port
    host = flood_words("virbr1", ports, ports, "virbr1")
    assert host == "flood: every other port (vnet2, vnet3)"


async def test_a_flood_to_one_port_reads_as_a_flood() -> None:
    a, b = "52:54:00:aa:01:01", "52:54:00:aa:01:03"
    words = flood_words("vnet0", ("vnet1",), ("vnet0", "vnet1"), "virbr0")
    flood = SwitchRow(1, 1_000_000_000, "vnet0", ("vnet1",), "flood", a, b, "192.168.122.10",
                      "192.168.122.11", "icmp", "ICMP echo-request", f"{b} is not in the FDB: "
                      + words)  # fmt: skip
    fwd = SwitchRow(2, 1_300_000_000, "vnet0", ("vnet1",), "forward", a, b, "192.168.122.10",
                    "192.168.122.11", "icmp", "ICMP echo-request",
                    f"{b} learned on vnet1 0 s ago")  # fmt: skip
    app = make_app(switch_factory=FakeSwitch([SwitchBatch(rows=(flood, fwd))]))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.selected_bridge = "virbr0"
        await pilot.pause(0.05)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SwitchScreen))
        screen = app.screen
        table = screen.query_one(LineTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        got = [table.get_row(k) for k in table.row_keys]
        # the same port left by, told apart in words: a flood went to every other port
        assert got[0][2].strip() == "others: vnet1" and got[0][3].strip() == "flood"
        assert got[1][2].strip() == "vnet1" and got[1][3].strip() == "forward"
        table.move_cursor(row=0)
        detail = screen.query_one("#switch-detail", Static)
        await wait_for(pilot, lambda: "only when promiscuous" in str(detail.render()))
        # the whole sentence fits the detail pane at 80 columns: its last word is on screen
        await pilot.pause(0.1)
        svg = app.export_screenshot()
        assert "promiscuous" in svg and "every&#160;other&#160;port&#160;(vnet1)" in svg


async def test_the_real_session_opens_in_the_sources_namespace(monkeypatch: Any) -> None:
    """LiveHost(netns=...) reads the lab's KVM host from outside it (the screenshots, the lab
    tests): the switch view's capture sockets must open in that namespace, not in this one."""
    import kvmtui.ui.screens.switch as switch_screen

    asked: list[tuple[str, str | None]] = []

    def fake_real(bridge: Any, snap: Any, netns: str | None = None) -> FakeSwitch:
        asked.append((bridge.name, netns))
        return FakeSwitch([])(bridge, snap)

    monkeypatch.setattr(switch_screen, "real_switch", fake_real)
    app = make_app()
    app.source.netns = "kvu9-host"  # type: ignore[union-attr]
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        app.selected_bridge = "virbr0"
        await pilot.pause(0.05)
        await pilot.press("s")
        await wait_for(pilot, lambda: asked)
        assert asked == [("virbr0", "kvu9-host")]
