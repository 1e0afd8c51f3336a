"""Pilot tests of the explorer against the hand-built sample snapshot (tests/ui/sample.py).

The source is a fake (FakeSource): these tests are about what the UI makes of a snapshot, its
keys and its states; the lab tests (test_lab.py) run the same app over LiveHost on the lab.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from textual.app import App

from kvmtui.core.model import FdbEntry, MacOwner
from kvmtui.lab import spec
from kvmtui.ui.screens.capture import CaptureScreen
from kvmtui.ui.screens.help import HelpScreen
from kvmtui.ui.widgets.host_pane import HostTree
from kvmtui.ui.widgets.mac_pane import MacTable
from kvmtui.ui.widgets.path_view import HopBox
from kvmtui.ui.widgets.problems import ProblemBar
from kvmtui.ui.widgets.vim_table import VimTable
from kvmtui.ui.widgets.vms_pane import VmsPane
from tests.ui.conftest import make_app
from tests.ui.helpers import cursor_row, loaded, rows, tree_lines, wait_for
from tests.ui.sample import (
    IPS,
    PREFIX,
    FakeSource,
    empty_snapshot,
    problem_snapshot,
    sample_snapshot,
    tap_of,
)

NAT_LIGHT = spec.lab_vm("nat-light")
BR_LIGHT = spec.lab_vm("br-light")


def line_with(lines: list[str], needle: str) -> str:
    hits = [ln for ln in lines if ln.removeprefix("◆ ").startswith(needle)]
    assert hits, f"{needle!r} not in {lines}"
    return hits[0]


def shown(app: App[int], selector: str) -> str:
    """What a Static shows now (panes redraw one message after a key: poll it)."""
    return str(app.query_one(selector).render())


async def test_host_tree_shows_uplinks_bridges_ports_and_networks() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        lines = tree_lines(app.query_one(HostTree))
        assert lines[0].startswith(f"{PREFIX}host")
        assert "default route via wan0" in lines[0]
        assert "uplink 198.51.100.2/24" in line_with(lines, "wan0 ")
        # order: uplink, then each bridge followed by its network and ports
        names = [ln.split()[0] for ln in lines[1:]]
        assert names == ["wan0", "virbr0", "network", "vnet0", "vnet4", "virbr1", "network",
                         "vnet2", "vnet3", "br0", "network", "ens9", "vnet1", "vnet5"]  # fmt: skip
        assert "bridge 192.168.122.1/24 · STP on · up" in line_with(lines, "virbr0 ")
        assert "network default  NAT" in line_with(lines, "network default ")
        assert "network hostonly  host-only" in line_with(lines, "network hostonly ")
        vnet0 = line_with(lines, "vnet0 ")
        assert f"VM nat-light · veth→{PREFIX}nat-light · fwd up" in vnet0
        assert "VM nat-qemu · tap · fwd up" in line_with(lines, "vnet4 ")
        assert f"veth→{PREFIX}lan · uplink" in line_with(lines, "ens9 ")


async def test_host_tree_rates_from_counters() -> None:
    async with make_app().run_test(size=(120, 30)) as pilot:
        app = await loaded(pilot)
        await wait_for(pilot, lambda: app.rates)
        await pilot.pause(0.05)
        lines = tree_lines(app.query_one(HostTree))
        # fixed_counters: vnet0 is the 8th name -> 8000 B rx, 2000 B tx per (fake) second
        assert "↓8.0 kB/s ↑2.0 kB/s" in line_with(lines, "vnet0 ")
        assert "↓1.0 kB/s ↑250 B/s" in line_with(lines, "wan0 ")


async def test_port_down_and_blocking_are_shown() -> None:
    snap = sample_snapshot()
    br0 = snap.bridge("br0")
    assert br0 is not None
    ports = tuple(
        dataclasses.replace(p, state="down", stp_state="blocking") if p.name == "ens9" else p
        for p in br0.ports
    )
    snap = dataclasses.replace(
        snap,
        bridges=tuple(dataclasses.replace(b, ports=ports) if b.name == "br0" else b
                      for b in snap.bridges),
    )  # fmt: skip
    async with make_app(snap).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        assert "BLOCKING down" in line_with(tree_lines(app.query_one(HostTree)), "ens9 ")


async def test_mac_table_of_selected_bridge_and_owners() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("2")
        table = app.query_one("#mac-table", MacTable)
        assert app.focused is table
        got = rows(table)
        assert [r[0] for r in got] == [
            "52:54:00:80:05:05", NAT_LIGHT.mac, NAT_LIGHT.tap_mac,
            spec.lab_vm("nat-qemu").mac, spec.lab_vm("nat-qemu").tap_mac,
        ]  # fmt: skip
        assert got[1] == [NAT_LIGHT.mac, "vnet0", "VM nat-light", IPS["nat-light"], "learned",
                          "1.5s"]  # fmt: skip
        await pilot.press("b", "b")  # virbr0 -> virbr1 -> br0
        assert app.selected_bridge == "br0"
        router = next(r for r in rows(table) if r[0].removeprefix("◆ ") == spec.LAN_ROUTER_MAC)
        assert router[1:4] == ["ens9", "LAN neighbour router", spec.LAN_ROUTER_IP]
        await pilot.press("B")
        assert app.selected_bridge == "virbr1"


async def test_host_tree_m_opens_mac_table_of_that_bridge() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        tree = app.query_one(HostTree)
        await pilot.press("G")  # last line: vnet5 on br0
        assert tree.cursor_node is not None and "vnet5" in tree.cursor_node.label.plain
        await pilot.press("m")
        await pilot.pause(0.05)
        assert app.query_one("TabbedContent").active == "macs"  # type: ignore[attr-defined]
        assert app.selected_bridge == "br0"


async def test_mac_filter_and_vim_keys() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("2")
        table = app.query_one("#mac-table", MacTable)
        await pilot.press("G")
        assert table.cursor_row == 4
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("j", "j")
        assert cursor_row(table)[0] == NAT_LIGHT.tap_mac
        await pilot.press("k")
        assert cursor_row(table)[0] == NAT_LIGHT.mac
        await pilot.press("slash")
        assert app.focused is app.query_one("#mac-filter")
        await pilot.press(*"qemu", "enter")
        assert app.focused is table
        assert [r[2] for r in rows(table)] == ["VM nat-qemu"]
        assert "1 of 5 entries" in str(app.query_one("#mac-title").render())
        await pilot.press("slash", *"zzz")
        assert rows(table) == []
        assert "No entry matches" in str(app.query_one("#mac-note").render())
        await pilot.press("escape")  # back to the table (the binding clears the filter)
        await pilot.press("escape")
        assert len(rows(table)) == 5


async def test_mac_table_live_update_keeps_cursor_and_diffs_rows() -> None:
    base = sample_snapshot()
    virbr0 = base.bridge("virbr0")
    assert virbr0 is not None
    newcomer = FdbEntry("02:00:00:00:00:01", "vnet0", None, "learned", 0.5,
                        MacOwner("unknown", ""))  # fmt: skip
    changed = dataclasses.replace(
        virbr0,
        fdb=(newcomer, *(dataclasses.replace(e, age_s=42.0) if e.mac == NAT_LIGHT.mac else e
                         for e in virbr0.fdb if e.mac != spec.lab_vm("nat-qemu").tap_mac)),
    )  # fmt: skip
    update = dataclasses.replace(
        base, bridges=tuple(changed if b.name == "virbr0" else b for b in base.bridges)
    )
    source = FakeSource(base, updates=[update])
    source.release.clear()  # hold the update until the cursor is placed
    async with make_app(source=source).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("2")
        table = app.query_one("#mac-table", MacTable)
        # under load the tab's rows and focus arrive over several refreshes: place the cursor
        # only once the table is filled and focused, so the keys cannot land elsewhere
        await wait_for(pilot, lambda: len(rows(table)) == len(virbr0.fdb) and table.has_focus)
        await pilot.press("j", "j", "j")
        await wait_for(pilot, lambda: cursor_row(table)[0] == spec.lab_vm("nat-qemu").mac)
        before_rows = len(rows(table))
        source.release.set()
        await wait_for(pilot, lambda: any(r[0] == newcomer.mac for r in rows(table)))
        await pilot.pause(0.05)
        got = rows(table)
        assert len(got) == before_rows  # one came, one went
        assert spec.lab_vm("nat-qemu").tap_mac not in [r[0] for r in got]
        assert next(r for r in got if r[0] == NAT_LIGHT.mac)[5] == "42s"
        # the cursor followed its row (nat-qemu's MAC), not its old index
        assert cursor_row(table)[0] == spec.lab_vm("nat-qemu").mac


async def test_networks_pane_modes_explanations_and_leases() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("3")
        nets = app.query_one("#net-table", VimTable)
        assert rows(nets) == [
            ["default", "NAT", "virbr0", "192.168.122.2-254", "2", "active · auto"],
            ["hostonly", "host-only", "virbr1", "192.168.100.2-254", "2", "active · auto"],
            ["bridged", "bridged", "br0", "from the LAN", "0", "active · auto"],
        ]
        explain = str(app.query_one("#net-explain").render())
        assert "NAT rule seen" in explain and "masqueraded to the host's own address" in explain
        leases = app.query_one("#lease-table", VimTable)
        assert rows(leases) == [
            [NAT_LIGHT.mac, IPS["nat-light"], "nat-light", "in 59m"],
            [spec.lab_vm("nat-qemu").mac, IPS["nat-qemu"], "nat-qemu", "in 40m"],
        ]
        await pilot.press("j")
        await wait_for(pilot, lambda: "Host-only" in shown(app, "#net-explain"))
        assert [r[3] for r in rows(leases)] == ["in 55m", "in 2m"]
        await pilot.press("j")
        explain = str(app.query_one("#net-explain").render())
        assert "Bridged" in explain and "no NAT" in explain
        assert "LAN's own DHCP server" in str(app.query_one("#lease-title").render())


async def test_vms_pane_nics_and_paths() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("4")
        table = app.query_one("#vm-table", VimTable)
        got = rows(table)
        assert got[0] == ["nat-qemu", "running", spec.lab_vm("nat-qemu").mac, "vnet4", "default",
                          f"{IPS['nat-qemu']} DHCP"]  # fmt: skip
        assert got[3] == ["br-light*", "running", BR_LIGHT.mac, "vnet1", "bridged",
                          f"{IPS['br-light']} ARP"]  # fmt: skip
        await pilot.pause(0.05)
        boxes = list(app.query(HopBox))
        assert [b.border_title for b in boxes] == [
            "vnet4 (tap)", "virbr0 (bridge)", "NAT", "wan0 (uplink)"
        ]  # fmt: skip
        assert "MASQUERADE: 192.168.122.0/24" in str(boxes[2].render())
        verdict = app.query_one("#path-verdict")
        assert "leaves through wan0, source NATed to 198.51.100.2" in str(verdict.render())
        await pilot.press("j", "j", "j", "j")  # iso-a
        await wait_for(pilot, lambda: "no way out" in str(verdict.render()))
        boxes = list(app.query(HopBox))
        assert boxes[-1].has_class("-bad") and "forward: none (isolated)" in str(boxes[-1].render())
        assert verdict.has_class("-bad")


async def test_one_identity_across_panes() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("4", "j", "j", "j")  # br-light
        await pilot.pause(0.05)
        ident = app.focus_identity
        assert ident is not None and ident.vm == "br-light"
        assert ident.macs >= {BR_LIGHT.mac, BR_LIGHT.tap_mac}
        assert ident.ips == {IPS["br-light"]} and ident.taps == {"vnet1"}
        # host tree: the VM's tap is marked, another one is not
        lines = tree_lines(app.query_one(HostTree))
        assert line_with(lines, "vnet1 ").startswith("◆ ")
        assert not line_with(lines, "vnet5 ").startswith("◆")
        # MAC table of br0: the VM's MAC and its tap's MAC are marked
        app.selected_bridge = "br0"
        await pilot.pause(0.05)
        marked = [r[0] for r in rows(app.query_one("#mac-table", MacTable)) if r[0][0] == "◆"]
        assert marked == [f"◆ {BR_LIGHT.mac}", f"◆ {BR_LIGHT.tap_mac}"]
        # networks: its network is marked
        nets = rows(app.query_one("#net-table", VimTable))
        assert [r[0] for r in nets] == ["default", "hostonly", "◆ bridged"]
        # and picking a MAC in the MAC table moves the identity (and the VMs pane follows)
        await pilot.press("2", "g")
        table = app.query_one("#mac-table", MacTable)
        while cursor_row(table)[0] != spec.lab_vm("br-qemu").mac:
            await pilot.press("j")
        await pilot.pause(0.05)
        assert app.focus_identity is not None and app.focus_identity.vm == "br-qemu"
        assert app.query_one(VmsPane).current == ("br-qemu", spec.lab_vm("br-qemu").mac)
        await pilot.press("x")
        assert app.focus_identity is None


async def test_help_is_contextual_and_lists_binding_ids() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        _title, rows_ = app.help_rows()
        ids = {r.binding_id for r in rows_}
        assert {"host.macs", "tree.down", "app.help", "app.quit"} <= ids
        assert "mac.filter" not in ids
        assert rows_[0].section == "Host tree"  # the focused widget's keys come first
        await pilot.press("2")
        _, rows_ = app.help_rows()
        ids = {r.binding_id for r in rows_}
        assert {"mac.filter", "mac.next_bridge", "table.down", "table.last"} <= ids
        assert "host.macs" not in ids
        down = next(r for r in rows_ if r.binding_id == "table.down")
        assert "j" in down.key and "↓" in down.key
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_keys_remapped_from_config(tmp_path: Path) -> None:
    cfg = tmp_path / "keys.toml"
    cfg.write_text('[keys]\n"app.tab.vms" = "v"\n"table.down" = ["n", "down"]\n')
    async with make_app(keymap_path=cfg).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("v")
        tabs = app.query_one("TabbedContent")
        await wait_for(pilot, lambda: tabs.active == "vms")  # type: ignore[attr-defined]
        table = app.query_one("#vm-table", VimTable)
        await wait_for(pilot, lambda: table.has_focus)
        await pilot.press("n")
        assert table.cursor_row == 1
        await pilot.press("j")  # remapped away: j no longer moves down
        assert table.cursor_row == 1
        down = next(r for r in app.help_rows()[1] if r.binding_id == "table.down")
        assert "n" in down.key and "j" not in down.key


async def test_broken_key_config_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    cfg = tmp_path / "keys.toml"
    cfg.write_text("[keys\nbroken")
    async with make_app(keymap_path=cfg).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        notes = [n.message for n in app._notifications]  # read-only peek for the assertion
        assert any("key config" in m and "ignored" in m for m in notes)
        await pilot.press("2")
        assert app.query_one("TabbedContent").active == "macs"  # type: ignore[attr-defined]


async def test_command_palette_goes_to_vm_bridge_network_mac() -> None:
    async with make_app().run_test(size=(100, 30)) as pilot:
        app = await loaded(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"go to vm iso-b")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.query_one("TabbedContent").active == "vms"  # type: ignore[attr-defined]
        assert app.focus_identity is not None and app.focus_identity.vm == "iso-b"
        assert cursor_row(app.query_one("#vm-table", VimTable))[0] == "iso-b*"
        # the same targets, called directly (the palette calls app.go_to)
        app.go_to("bridge", "br0")
        await pilot.pause(0.05)
        assert app.query_one("TabbedContent").active == "macs"  # type: ignore[attr-defined]
        assert app.selected_bridge == "br0"
        app.go_to("mac", spec.LAN_ROUTER_MAC)
        await pilot.pause(0.1)
        assert cursor_row(app.query_one("#mac-table", MacTable))[0] == spec.LAN_ROUTER_MAC
        app.go_to("network", "hostonly")
        await pilot.pause(0.05)
        assert "Host-only" in str(app.query_one("#net-explain").render())


async def test_c_opens_the_capture_screen_of_the_selected_nic() -> None:
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("c")  # nothing selected yet: no capture target
        assert not isinstance(app.screen, CaptureScreen)
        await pilot.press("4", "j", "j")  # nat-light
        await pilot.press("c")
        await pilot.pause(0.1)
        screen = app.screen
        assert isinstance(screen, CaptureScreen)
        assert (screen.vm, screen.mac) == ("nat-light", NAT_LIGHT.mac)
        await wait_for(pilot, lambda: len(screen.query(HopBox)) == 4)
        titles = [b.border_title for b in screen.query(HopBox)]
        assert titles == [f"{tap_of('nat-light')} (tap)", "virbr0 (bridge)", "NAT",
                          "wan0 (uplink)"]  # fmt: skip
        # (the capture view itself is issue 5's, tested in test_capture_screen.py)


async def test_problems_are_shown_not_tracebacks() -> None:
    async with make_app(problem_snapshot()).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        bar = app.query_one(ProblemBar)
        text = str(bar.render())
        assert bar.display and "libvirt: libvirtd unreachable" in text and "not root" in text
        await pilot.press("4")
        await wait_for(pilot, lambda: "libvirt is unreachable" in shown(app, "#vm-path-title"))
        await pilot.press("3")
        await wait_for(pilot, lambda: "libvirt is unreachable" in shown(app, "#net-explain"))


async def test_source_failure_is_retried_and_recovers() -> None:
    source = FakeSource(fail="libvirtd went away")
    async with make_app(source=source, retry_s=0.3).run_test(size=(80, 24)) as pilot:
        app = pilot.app
        bar = app.query_one(ProblemBar)
        await wait_for(pilot, lambda: "cannot read the host" in str(bar.render()))
        assert "ConnectionError: libvirtd went away (retrying in 0.3 s)" in str(bar.render())
        assert app.snapshot is None
        source._fail = None
        await wait_for(pilot, lambda: app.snapshot is not None)  # type: ignore[attr-defined]
        await pilot.pause(0.05)
        assert not bar.display


async def test_missing_live_reader_is_one_line() -> None:
    def factory() -> FakeSource:
        import importlib

        importlib.import_module("kvmtui.core.no_such_reader")
        raise AssertionError("unreachable")

    from kvmtui.ui.app import KvmApp

    app = KvmApp(source_factory=factory, poll_s=None)
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.query_one(ProblemBar)
        # the one trouble line every read failure gets (no special "not in this build" case)
        await wait_for(
            pilot, lambda: "cannot read the host: ModuleNotFoundError" in str(bar.render())
        )


async def test_selected_bridge_vanishes() -> None:
    base = sample_snapshot()
    gone = dataclasses.replace(base, bridges=tuple(b for b in base.bridges if b.name != "br0"))
    source = FakeSource(base, updates=[gone])
    source.release.clear()
    async with make_app(source=source).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("G")  # vnet5 on br0
        await pilot.press("2")
        assert app.selected_bridge == "br0"
        source.release.set()
        note = app.query_one("#mac-note")
        await wait_for(pilot, lambda: "no longer on this host" in str(note.render()))
        assert "Bridge br0 is no longer on this host" in str(note.render())
        assert rows(app.query_one("#mac-table", MacTable)) == []
        lines = tree_lines(app.query_one(HostTree))
        assert not any(ln.startswith("br0") for ln in lines)
        tree = app.query_one(HostTree)
        assert tree.cursor_node is not None  # the cursor landed on a node that exists
        await pilot.press("b")
        assert app.selected_bridge == "virbr0"
        assert rows(app.query_one("#mac-table", MacTable))


async def test_empty_host() -> None:
    async with make_app(empty_snapshot()).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        assert "no interfaces" in tree_lines(app.query_one(HostTree))[0]
        await pilot.press("2")
        await wait_for(pilot, lambda: "No bridges on this host" in shown(app, "#mac-note"))
        await pilot.press("3")
        await wait_for(
            pilot, lambda: "No libvirt networks on this host" in shown(app, "#net-explain")
        )
        await pilot.press("4")
        await wait_for(pilot, lambda: "No VMs on this host" in shown(app, "#vm-path-title"))
        await pilot.press("c")
        assert not isinstance(app.screen, CaptureScreen)


async def test_presenter_theme_and_toggle() -> None:
    async with make_app(start_theme="presenter").run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        assert app.theme == "presenter"
        await pilot.press("t")
        assert app.theme == "textual-dark"
        await pilot.press("t")
        assert app.theme == "presenter"


async def test_wide_terminal_uses_the_room() -> None:
    async with make_app().run_test(size=(160, 40)) as pilot:
        app = await loaded(pilot)
        detail = app.query_one("#host-detail")
        assert detail.display and detail.size.width >= 39
        tree = app.query_one(HostTree)
        await wait_for(pilot, lambda: tree.cursor_line == 1)  # the first node: wan0

        def detail_text() -> str:  # the panel follows the cursor one message later
            return str(app.query_one("#host-detail-text").render())

        await wait_for(pilot, lambda: "carries the default route" in detail_text())
        await pilot.press("j")  # virbr0
        await wait_for(pilot, lambda: "Bridge virbr0" in detail_text())
        assert "FDB entries 5" in detail_text()
    async with make_app().run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        assert app.query_one("#host-detail").size.width == 0  # hidden at 80 columns


async def test_selected_vm_vanishes_and_a_new_one_appears() -> None:
    base = sample_snapshot()
    later = dataclasses.replace(
        base,
        vms=(
            *(v for v in base.vms if v.name != "nat-light"),
            dataclasses.replace(base.vms[-1], name="new-light", uuid="new"),
        ),
    )
    source = FakeSource(base, updates=[later])
    source.release.clear()
    async with make_app(source=source).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("4", "j", "j")  # nat-light
        assert app.query_one(VmsPane).current == ("nat-light", NAT_LIGHT.mac)
        source.release.set()
        table = app.query_one("#vm-table", VimTable)
        await wait_for(pilot, lambda: any("new-light" in r[0] for r in rows(table)))
        names = [r[0].removeprefix("◆ ") for r in rows(table)]
        assert "nat-light*" not in names and "new-light*" in names
        # the cursor and the path moved to a VM that exists (the row that took its place)
        await wait_for(pilot, lambda: "br-light" in shown(app, "#vm-path-title"))
        current = app.query_one(VmsPane).current
        assert current is not None and current[0] == cursor_row(table)[0].rstrip("*")
