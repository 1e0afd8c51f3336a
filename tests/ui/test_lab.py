"""The explorer over the real host model (LiveHost) on the lab: pilot tests.

Same app as test_app.py, but the source is ``LiveHost(uri=lab.uri, netns=lab.host_ns)`` reading
the lab's namespaces, libvirtd and dnsmasq. One test changes the lab (adds a port to br0 and
removes it) and watches the tree follow through ``watch()``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from kvmtui.lab import spec
from kvmtui.ui.app import KvmApp
from kvmtui.ui.widgets.host_pane import HostTree
from kvmtui.ui.widgets.mac_pane import MacTable
from kvmtui.ui.widgets.vim_table import VimTable
from tests.ui.helpers import rows, tree_lines, wait_for

pytestmark = pytest.mark.lab


@pytest.fixture
def live(lab) -> Iterator[KvmApp]:  # type: ignore[no-untyped-def]
    try:
        from kvmtui.core.live import LiveHost
    except ImportError as exc:  # pragma: no cover - only while the host model is missing
        pytest.skip(f"kvmtui.core.live (the host model reader) is not importable: {exc}")
    source = LiveHost(uri=lab.uri, netns=lab.host_ns)
    try:
        yield KvmApp(source, poll_s=0.5)
    finally:
        source.close()


def _line(lines: list[str], name: str) -> str | None:
    return next((ln for ln in lines if ln.removeprefix("◆ ").startswith(f"{name} ")), None)


async def test_lab_host_tree_macs_networks_vms(live: KvmApp) -> None:
    app = live
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=20)
        await pilot.pause(0.2)
        lines = tree_lines(app.query_one(HostTree))
        for bridge in (spec.NAT_BRIDGE, spec.ISO_BRIDGE, spec.BR_BRIDGE):
            assert _line(lines, bridge) is not None, lines
        assert "uplink" in (_line(lines, spec.BR_NIC) or "")
        assert "uplink" in (_line(lines, spec.UPLINK) or "")
        assert f"default route via {spec.UPLINK}" in lines[0]
        assert "nat-light" in (_line(lines, spec.lab_vm("nat-light").tap or "") or "")
        # the MAC table of virbr0 has nat-light's MAC, owned by that VM, with its leased IP
        app.selected_bridge = spec.NAT_BRIDGE
        await pilot.press("2")
        await wait_for(pilot, lambda: any(spec.lab_vm("nat-light").mac in r[0]
                                          for r in rows(app.query_one("#mac-table", MacTable))),
                       timeout=20)  # fmt: skip
        row = next(r for r in rows(app.query_one("#mac-table", MacTable))
                   if spec.lab_vm("nat-light").mac in r[0])  # fmt: skip
        assert "nat-light" in row[2] and row[3].startswith("192.168.122.")
        # networks with their modes
        await pilot.press("3")
        nets = {r[0].strip(): r for r in rows(app.query_one("#net-table", VimTable))}
        assert nets[spec.NAT_NET][1] == "NAT" and nets[spec.ISO_NET][1] == "host-only"
        assert nets[spec.BR_NET][1] == "bridged"
        # VMs and the isolated VM's verdict
        await pilot.press("4")
        vm_rows = rows(app.query_one("#vm-table", VimTable))
        assert any("iso-a" in r[0] for r in vm_rows)
        table = app.query_one("#vm-table", VimTable)
        for _ in range(len(vm_rows)):
            if "iso-a" in rows(table)[table.cursor_row][0]:
                break
            await pilot.press("j")
        verdict = app.query_one("#path-verdict")
        await wait_for(pilot, lambda: "✗" in str(verdict.render()), timeout=5)


async def test_lab_tree_follows_a_new_port(live: KvmApp, lab) -> None:  # type: ignore[no-untyped-def]
    app = live
    ns = lab.host_ns
    a, b = "kvDt0", "kvDt1"
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=20)
        tree = app.query_one(HostTree)
        assert _line(tree_lines(tree), a) is None
        try:
            subprocess.run(["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b],
                           check=True)  # fmt: skip
            subprocess.run(["ip", "-n", ns, "link", "set", a, "master", spec.BR_BRIDGE, "up"],
                           check=True)  # fmt: skip
            await wait_for(pilot, lambda: _line(tree_lines(tree), a) is not None, timeout=5)
        finally:
            subprocess.run(["ip", "-n", ns, "link", "del", a], check=False)
        await wait_for(pilot, lambda: _line(tree_lines(tree), a) is None, timeout=5)
