"""Several ``--host``: the explorer opens on the host picker; Enter opens that host's explorer,
``H`` comes back, and a switch leaves nothing of the old host behind (its source closed, its
late snapshots and counters dropped). Fake hosts built from the sample (see sample.py)."""

from __future__ import annotations

import argparse
import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

from kvmtui.core.model import HostSnapshot
from kvmtui.ui import launch
from kvmtui.ui.app import KvmApp
from kvmtui.ui.screens.hosts import HostPickerScreen
from kvmtui.ui.widgets.vim_table import VimTable
from tests.ui.conftest import ticking
from tests.ui.helpers import rows, wait_for
from tests.ui.sample import FROZEN_NOW, FakeSource, empty_snapshot, sample_snapshot

HOSTS = ("root@kvm-a", "kvm-b")


def snap_of(target: str) -> HostSnapshot:
    if target == "kvm-b":
        return dataclasses.replace(empty_snapshot(), hostname="b-host")
    return dataclasses.replace(sample_snapshot(), hostname="a-host")


class LateSource(FakeSource):
    """A host whose watch still reports after it was told to stop (a slow SSH stream)."""

    def __init__(self, snapshot: HostSnapshot) -> None:
        super().__init__(snapshot)
        self.late = threading.Event()
        self.late_sent = threading.Event()

    def watch(self, on_snapshot: Callable[[HostSnapshot], None], stop: threading.Event) -> None:
        self.late.wait(10)
        on_snapshot(dataclasses.replace(self._snap, hostname="late-from-the-old-host"))
        self.late_sent.set()


class Hosts:
    """The host factory the app gets: one fake source per target, every one kept."""

    def __init__(self, late: bool = False) -> None:
        self.opened: list[tuple[str, FakeSource]] = []
        self.late = late

    def __call__(self, target: str) -> FakeSource:
        src = LateSource(snap_of(target)) if self.late else FakeSource(snap_of(target))
        self.opened.append((target, src))
        return src


def picker_app(hosts: Hosts, **kwargs: object) -> KvmApp:
    return KvmApp(
        hosts=HOSTS,
        host_factory=hosts,
        clock=lambda: FROZEN_NOW,
        monotonic=ticking(),
        poll_s=kwargs.pop("poll_s", 0.02),  # type: ignore[arg-type]
        keymap_path=Path("/nonexistent/kvmtui-keys.toml"),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_opens_on_the_picker_and_enter_opens_that_host() -> None:
    hosts = Hosts()
    app = picker_app(hosts)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HostPickerScreen))
        await pilot.pause(0.1)
        table = app.screen.query_one(VimTable)
        assert rows(table) == [[h, "not read yet"] for h in HOSTS]  # nothing marked yet
        assert hosts.opened == [] and app.snapshot is None  # nothing read before a choice
        await pilot.press("escape")  # nothing to go back to: the picker stays
        await pilot.pause(0.05)
        assert isinstance(app.screen, HostPickerScreen)
        await pilot.press("j", "enter")
        await wait_for(pilot, lambda: app.snapshot is not None)
        assert [t for t, _ in hosts.opened] == ["kvm-b"]
        assert app.host == "kvm-b" and app.snapshot is not None
        assert app.snapshot.hostname == "b-host"
        assert app.sub_title.startswith("kvm-b (H: hosts) · b-host")  # which --host, the key back
        assert not isinstance(app.screen, HostPickerScreen)


async def test_h_comes_back_and_a_switch_leaves_nothing_of_the_old_host() -> None:
    hosts = Hosts()
    app = picker_app(hosts)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HostPickerScreen))
        await pilot.press("enter")  # the first host
        await wait_for(pilot, lambda: app.snapshot is not None and app.rates)
        app.action_show_macs("virbr0")
        await pilot.pause(0.05)
        assert app.selected_bridge == "virbr0"
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HostPickerScreen))
        await pilot.pause(0.1)
        table = app.screen.query_one(VimTable)
        got = rows(table)
        assert got[0][0] == "◆ root@kvm-a" and got[0][1].startswith("a-host: ")  # explored, seen
        assert got[1] == ["kvm-b", "not read yet"]
        await pilot.press("escape")  # back to the same host, not re-read
        await pilot.pause(0.1)
        assert not isinstance(app.screen, HostPickerScreen) and len(hosts.opened) == 1
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HostPickerScreen))
        shown: list[dict[str, tuple[float, float]]] = []
        app.watch(app, "rates", lambda r: shown.append(r), init=False)
        await pilot.press("j", "enter")
        await wait_for(
            pilot, lambda: app.snapshot is not None and app.snapshot.hostname == "b-host"
        )
        old = hosts.opened[0][1]
        await wait_for(pilot, lambda: old.closed)  # the host left behind is closed
        assert app.selected_bridge is None and app.focus_identity is None
        # rates only from two readings of b: a reading of a against one of b goes backwards
        # (b's fake counters start again from 0) and would show as 0 B/s
        await wait_for(pilot, lambda: bool(shown and shown[-1]))
        await pilot.pause(0.2)  # ten more polls (a change of rates is all the watcher sees)
        assert all(rx > 0 and tx > 0 for r in shown if r for rx, tx in r.values()), shown


async def test_a_late_snapshot_of_the_old_host_is_dropped() -> None:
    hosts = Hosts(late=True)
    app = picker_app(hosts, poll_s=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HostPickerScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HostPickerScreen))
        await pilot.press("j", "enter")
        await wait_for(
            pilot, lambda: app.snapshot is not None and app.snapshot.hostname == "b-host"
        )
        old = hosts.opened[0][1]
        assert isinstance(old, LateSource)
        old.late.set()  # the old host's stream reports once more, after the switch
        await wait_for(pilot, lambda: old.late_sent.is_set())
        await pilot.pause(0.2)
        assert app.snapshot is not None and app.snapshot.hostname == "b-host"
        new = hosts.opened[1][1]
        assert isinstance(new, LateSource)
        new.late.set()  # let its watch end


async def test_one_host_has_no_picker_and_no_h_key() -> None:
    app = KvmApp(FakeSource(), poll_s=None, keymap_path=Path("/nonexistent/kvmtui-keys.toml"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None)
        assert not isinstance(app.screen, HostPickerScreen)
        assert not app.check_action("hosts", ())
        await pilot.press("H")
        await pilot.pause(0.05)
        assert not isinstance(app.screen, HostPickerScreen)


def test_launch_opens_each_host_as_a_single_host_would(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[argparse.Namespace] = []

    def fake_open(args: argparse.Namespace) -> FakeSource:
        seen.append(args)
        return FakeSource()

    import kvmtui.core.hosts

    monkeypatch.setattr(kvmtui.core.hosts, "open_source", fake_open)
    args = argparse.Namespace(remote=list(HOSTS), ssh_config="/tmp/cfg", connect=None)
    launch.host_factory(args)("kvm-b")
    assert [a.remote for a in seen] == [["kvm-b"]] and seen[0].ssh_config == "/tmp/cfg"
    assert args.remote == list(HOSTS)  # the caller's args untouched
