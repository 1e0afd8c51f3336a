"""The doctor in the explorer: the VMs tab's verdict line, ``d`` (one NIC's findings ranked, live)
and ``D`` (every VM). The doctor is a fake built from the contract (tests/ui/sample.py): these
tests are about the screens; the engine is tested on the broken lab by its own tests."""

from __future__ import annotations

import dataclasses
import threading

from textual.widgets import Static

from kvmtui.core.model import HostSnapshot, Link
from kvmtui.doctor.model import HostDiagnosis
from kvmtui.ui.screens.doctor import DoctorScreen
from kvmtui.ui.screens.hostdoctor import HostDoctorScreen
from kvmtui.ui.widgets.vim_table import VimTable
from kvmtui.ui.widgets.vms_pane import VmsPane
from tests.ui.conftest import make_app
from tests.ui.helpers import loaded, rows, wait_for
from tests.ui.sample import NAT_LIGHT, FakeSource, sample_diagnosis, sample_snapshot

TAP = NAT_LIGHT.tap


def tap_down(snap: HostSnapshot) -> bool:
    return any(isinstance(x, Link) and x.name == TAP and x.state == "down" for x in snap.links)


def doctor_of(calls: list[HostSnapshot]) -> object:
    """Says tap.down exactly when the snapshot shows the tap down (as the engine would)."""

    def doctor(snap: HostSnapshot) -> HostDiagnosis:
        calls.append(snap)
        return sample_diagnosis(snap, broken_tap=TAP if tap_down(snap) else None)

    return doctor


def with_tap_down(snap: HostSnapshot) -> HostSnapshot:
    links = tuple(dataclasses.replace(x, state="down") if x.name == TAP else x for x in snap.links)
    return dataclasses.replace(snap, links=links)


def text(w: Static) -> str:
    return str(w.render())


async def test_verdict_line_and_doctor_screen_follow_the_host() -> None:
    base = sample_snapshot()
    source = FakeSource(base, updates=[with_tap_down(base)])
    source.release.clear()
    calls: list[HostSnapshot] = []
    app = make_app(source=source, doctor=doctor_of(calls), doctor_every_s=0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("4")
        pane = app.query_one(VmsPane)
        pane.select_vm(NAT_LIGHT.name)
        await wait_for(
            pilot, lambda: pane.current is not None and pane.current[0] == NAT_LIGHT.name
        )
        pane_line = app.query_one("#vm-verdict", Static)
        await wait_for(pilot, lambda: "✓ ok" in text(pane_line))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen))
        body = app.screen.query_one("#doctor-findings", Static)
        assert "Nothing wrong found" in text(body)
        source.release.set()  # the tap goes down on the host
        await wait_for(pilot, lambda: "tap.down" in text(body))
        shown = text(body)
        # ranked: the root cause (tap down) before the lease it causes; evidence and fix shown
        assert shown.index("tap.down") < shown.index("dhcp.no_lease")
        assert "(netlink)" in shown and f"fix: ip link set {TAP} up" in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: f"at {TAP}: tap {TAP} is down" in text(pane_line))
        assert calls and tap_down(calls[-1])


async def test_host_wide_view_lists_every_nic_and_opens_one() -> None:
    snap = with_tap_down(sample_snapshot())
    app = make_app(snap, doctor=lambda s: sample_diagnosis(s, broken_tap=TAP))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, HostDoctorScreen))
        table = app.screen.query_one(VimTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        got = rows(table)
        nics = sum(len(v.nics) for v in snap.vms)
        assert len(got) == nics
        bad = [r for r in got if r[2].startswith("✗")]
        assert [r[0] for r in bad] == [NAT_LIGHT.name]
        assert f"{TAP}: tap {TAP} is down" in bad[0][3]
        table.move_cursor(row=[r[0] for r in got].index(NAT_LIGHT.name))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen))
        assert app.screen.vm == NAT_LIGHT.name  # type: ignore[attr-defined]


async def test_doctor_reads_are_throttled_and_never_overlap() -> None:
    base = sample_snapshot()
    updates = [dataclasses.replace(base, taken_at=base.taken_at + i) for i in range(1, 6)]
    source = FakeSource(base, updates=updates)
    busy = threading.Lock()
    overlaps: list[int] = []
    calls: list[float] = []

    def doctor(snap: HostSnapshot) -> HostDiagnosis:
        if not busy.acquire(blocking=False):
            overlaps.append(1)
        try:
            calls.append(snap.taken_at)
            return sample_diagnosis(snap)
        finally:
            busy.release()

    app = make_app(source=source, doctor=doctor, doctor_every_s=30.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: app.diagnosis is not None)
        await wait_for(
            pilot, lambda: app.snapshot is not None and app.snapshot.taken_at >= base.taken_at + 5
        )
        assert calls == [base.taken_at]  # 6 snapshots, one read within the 30 s window
        assert not overlaps
