"""The explorer on fixtures of real host shapes replayed as hosts (``kvmtui --replay
tests/fixtures/NAME.json``): a Proxmox VM's path through its firewall bridge with the VLAN it
leaves vmbr0's trunk in, a macvtap VM's tap-less path with its note, in the VMs tab at 80x24."""

from __future__ import annotations

from kvmtui.core.recorded import open_recording
from kvmtui.ui.widgets.path_view import HopBox
from kvmtui.ui.widgets.vim_table import VimTable
from tests.fixtures.shapes import path_of
from tests.ui.conftest import make_app
from tests.ui.helpers import loaded, rows, wait_for


async def test_proxmox_fixture_in_the_vms_tab() -> None:
    src = open_recording(path_of("proxmox"))
    async with make_app(source=src).run_test(size=(80, 24)) as pilot:  # type: ignore[arg-type]
        app = await loaded(pilot)
        await pilot.press("4")
        table = app.query_one("#vm-table", VimTable)
        await wait_for(pilot, lambda: len(rows(table)) == 2)
        names = [r[0] for r in rows(table)]
        assert sorted(names) == ["db", "web"]
        for _ in range(names.index("web")):
            await pilot.press("j")
        await wait_for(pilot, lambda: len(list(app.query(HopBox))) == 7)
        titles = [b.border_title for b in app.query(HopBox)]
        assert titles == [
            "tap100i0 (tap)", "fwbr100i0 (bridge)", "fwln100i0 (veth)", "fwpr100p0 (veth)",
            "vmbr0 (bridge, vlan 20)", "bond0 (uplink, vlan 20 tagged)", "LAN",
        ]  # fmt: skip
        verdict = str(app.query_one("#path-verdict").render())
        assert "leaves through bond0 unchanged in VLAN 20" in verdict
        assert "note: fwbr100i0 is Proxmox's firewall bridge" in verdict


async def test_macvtap_fixture_path_is_tapless_with_its_note() -> None:
    src = open_recording(path_of("macvtap"))
    async with make_app(source=src).run_test(size=(80, 24)) as pilot:  # type: ignore[arg-type]
        app = await loaded(pilot)
        await pilot.press("4")
        table = app.query_one("#vm-table", VimTable)
        await wait_for(pilot, lambda: len(rows(table)) == 4)
        assert rows(table)[0][0] == "mv-bridge"
        await wait_for(pilot, lambda: len(list(app.query(HopBox))) == 2)
        titles = [b.border_title for b in app.query(HopBox)]
        assert titles == ["macvtap0 (macvtap)", "eno1 (uplink)"]
        verdict = str(app.query_one("#path-verdict").render())
        assert "note: the host cannot reach this VM over eno1" in verdict
