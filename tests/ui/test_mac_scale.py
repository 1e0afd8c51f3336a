"""The MAC table at host scale, and what its rows say.

A bridge with 10,000 FDB entries (a hand-built snapshot: the rows are what LiveHost gives, the
size is what a host with hundreds of VMs has) is shown whole, the cursor walks it, and a live
change inserted above the cursor leaves the cursor on its row. The wording: permanent and
static entries show no age (they never age out), a port's own address says so, and a neighbour
the host routes through is named the LAN router. No timing here: bench/ui.py --fdb measures.
"""

from __future__ import annotations

import dataclasses

from kvmtui.core.model import Bridge, FdbEntry, HostSnapshot, MacOwner, Route
from kvmtui.lab import spec
from kvmtui.ui.identity import Identity, resolve
from kvmtui.ui.widgets.mac_pane import MacPane, MacTable
from tests.ui.conftest import make_app
from tests.ui.helpers import cursor_row, loaded, rows, wait_for
from tests.ui.sample import FakeSource, sample_snapshot

N = 10_000
BIG = "br0"


def _mac(i: int) -> str:
    return "02:be:" + ":".join(f"{(i >> s) & 255:02x}" for s in (24, 16, 8, 0))


def big_snapshot(extra: tuple[FdbEntry, ...] = ()) -> HostSnapshot:
    """The sample host with br0's FDB grown to N static entries over its ports."""
    base = sample_snapshot()
    br0 = base.bridge(BIG)
    assert br0 is not None
    ports = [p.name for p in br0.ports]
    unknown = MacOwner("unknown", "")
    grown = tuple(
        FdbEntry(_mac(i), ports[i % len(ports)], None, "static", 3.0, unknown) for i in range(N)
    )
    bridge: Bridge = dataclasses.replace(br0, fdb=(*br0.fdb, *grown, *extra))
    return dataclasses.replace(
        base, bridges=tuple(bridge if b.name == BIG else b for b in base.bridges)
    )


async def test_ten_thousand_rows_cursor_and_live_insert_above_it() -> None:
    base = big_snapshot()
    newcomer = FdbEntry("02:00:00:00:00:07", "ens9", None, "learned", 0.2, MacOwner("unknown", ""))
    update = big_snapshot((newcomer,))
    source = FakeSource(base, updates=[update])
    source.release.clear()  # hold the update until the cursor is placed
    async with make_app(source=source).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("2", "b", "b")  # virbr0 -> virbr1 -> br0
        table = app.query_one("#mac-table", MacTable)
        total = len(base.bridge(BIG).fdb)  # type: ignore[union-attr]
        await wait_for(pilot, lambda: table.row_count == total and table.has_focus)
        assert f"{total} entries" in str(app.query_one("#mac-title").render())
        shown = rows(table)
        assert len(shown) == total
        # sorted by port, learned first, then MAC: ens9's rows lead
        assert [r[1] for r in shown[:3]] == ["ens9", "ens9", "ens9"]
        await pilot.press("j", "j", "j", "j", "j")
        await wait_for(pilot, lambda: table.cursor_row == 5)
        here = cursor_row(table)
        assert "row 6" in str(app.query_one("#mac-title").render())
        await pilot.press("G")
        await wait_for(pilot, lambda: table.cursor_row == total - 1)
        assert cursor_row(table)[0] == shown[-1][0].removeprefix("◆ ")
        await pilot.press("g", "j", "j", "j", "j", "j")
        await wait_for(pilot, lambda: cursor_row(table) == here)
        source.release.set()  # the newcomer sorts above the cursor (ens9, learned, 02:00:..)
        await wait_for(pilot, lambda: table.row_count == total + 1)
        assert cursor_row(table) == here  # the cursor stayed on its entry
        assert table.cursor_row == 6  # which moved down one row
        assert newcomer.mac in [r[0] for r in rows(table)[:6]]


async def test_no_age_on_permanent_entries_own_macs_and_the_lan_router() -> None:
    base = sample_snapshot()
    routed = dataclasses.replace(
        base, routes=(Route("default", spec.BR_NIC, spec.LAN_ROUTER_IP),)
    )  # the host's default route goes through the LAN router
    async with make_app(routed).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("2", "b", "b")
        table = app.query_one("#mac-table", MacTable)
        await wait_for(pilot, lambda: app.selected_bridge == BIG and table.row_count > 0)
        got = {r[0].removeprefix("◆ "): r for r in rows(table)}
        br0 = base.bridge(BIG)
        assert br0 is not None
        for e in br0.fdb:
            row = got[e.mac]
            if e.kind in ("permanent", "static"):
                assert row[5] == "", row  # never ages out: no age shown
            else:
                assert row[5] != "", row
            if e.owner.kind == "host" and e.owner.name == e.port:
                assert row[2] == "port's own MAC"
        router = got[spec.LAN_ROUTER_MAC]
        assert router[2] == "LAN router (default gw)"
        assert router[3] == spec.LAN_ROUTER_IP


async def test_live_change_patches_rows_keys_and_identity_marks() -> None:
    """Snapshots that keep the unchanged FdbEntry objects (as LiveHost does) are patched in
    place: a row that went is gone from the table and from the keys a MAC is found by, a new
    row owned by the VM in focus is marked, and a row that changed (its age) shows the new one."""
    base = big_snapshot()
    br0 = base.bridge(BIG)
    assert br0 is not None
    vm = next(v for v in base.vms if v.nics)
    gone, aged = br0.fdb[-1], br0.fdb[-2]
    newcomer = FdbEntry("02:00:00:00:00:09", br0.ports[0].name, None, "learned", 0.5,
                        MacOwner("vm", vm.name, vm.nics[0].tap))  # fmt: skip
    older = dataclasses.replace(aged, kind="learned", age_s=42.0)

    def with_fdb(fdb: tuple[FdbEntry, ...]) -> HostSnapshot:
        bridge = dataclasses.replace(br0, fdb=fdb)
        return dataclasses.replace(
            base, bridges=tuple(bridge if b.name == BIG else b for b in base.bridges)
        )

    first = with_fdb((*br0.fdb[:-2], older, newcomer))  # the same objects but three
    second = with_fdb(first.bridge(BIG).fdb[:-1])  # type: ignore[union-attr]  # newcomer left
    source = FakeSource(base, updates=[first, second], update_delay=1.5)
    source.release.clear()
    async with make_app(source=source).run_test(size=(80, 24)) as pilot:
        app = await loaded(pilot)
        await pilot.press("2", "b", "b")
        pane = app.query_one(MacPane)
        table = app.query_one("#mac-table", MacTable)
        total = len(br0.fdb)
        await wait_for(pilot, lambda: table.row_count == total and table.has_focus)
        app.focus_identity = resolve(base, vm=vm.name, mac=vm.nics[0].mac)
        await pilot.pause(0.05)
        source.release.set()
        await wait_for(pilot, lambda: app.snapshot is first)
        await pilot.pause(0.05)
        by_mac = {r[0].removeprefix("◆ "): r for r in rows(table)}
        assert table.row_count == total and gone.mac not in by_mac
        assert not pane.select_mac(gone.mac) and pane.select_mac(newcomer.mac)
        assert by_mac[newcomer.mac][0] == "◆ " + newcomer.mac  # the VM in focus owns it
        assert by_mac[older.mac][4] == "learned" and by_mac[older.mac][5] != ""
        assert marks_are_fresh(pane, table, app.focus_identity)
        await wait_for(pilot, lambda: app.snapshot is second)
        await pilot.pause(0.05)
        assert table.row_count == total - 1 and not pane.select_mac(newcomer.mac)
        assert newcomer.mac not in {r[0].removeprefix("◆ ") for r in rows(table)}
        assert marks_are_fresh(pane, table, app.focus_identity)


def marks_are_fresh(pane: MacPane, table: MacTable, identity: Identity | None) -> bool:
    """The marks of the patched index are those of an index made again from the rows."""
    patched = set(table._marked)
    pane._index = None
    pane.show_identity(identity)
    return bool(patched) and patched == set(table._marked)
