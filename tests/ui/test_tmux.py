"""Smoke tests in a real terminal: tmux at 80x24, keys as a user presses them, screen read back.

1. The explorer on the sample snapshot (``python -m tests.ui.sample_app``): the real Textual
   driver and terminal, no lab needed.
2. The real ``kvmtui`` inside the lab's host namespace
   (``kvmtui lab --prefix P exec -- kvmtui``), over LiveHost, using the session ``lab`` fixture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kvmtui.lab import spec
from tests.ui.tmux import Tmux

ROOT = Path(__file__).resolve().parents[2]
KVMTUI = ROOT / ".venv" / "bin" / "kvmtui"


def test_tmux_sample_app_80x24() -> None:
    term = Tmux([sys.executable, "-m", "tests.ui.sample_app"], cwd=str(ROOT))
    try:
        term.wait_for("virbr0")
        screen = term.wait_for("f1 Help")
        assert "Host 1" in screen and "VMs 4" in screen
        assert "f1 Help" in screen and "q Quit" in screen
        assert "VM nat-light · veth→kvdev-nat-light" in screen
        term.wait_for("kB/s")  # live rates arrive from the counters poll
        term.keys("2")
        screen = term.wait_for("MAC table of virbr0")
        assert spec.lab_vm("nat-qemu").mac in screen
        term.keys("b", "b")
        screen = term.wait_for("MAC table of br0")
        assert "LAN neighbour router" in screen and spec.LAN_ROUTER_IP in screen
        term.keys("/", "q", "e", "m", "u", "Enter")
        screen = term.wait_for("1 of 6 entries")
        assert "VM br-qemu" in screen and "LAN neighbour" not in screen
        term.keys("3")
        screen = term.wait_for("Network")
        assert "host-only" in screen and "from the LAN" in screen
        term.keys("4", "j", "j", "j", "j")
        term.wait_for("no way out: isolated network")
        term.wait_for("virbr1 (bridge)")
        term.keys("F1")
        screen = term.wait_for("Help:")
        assert "table.down" in screen
        term.keys("Escape", "q")
        term.wait_for("[exited] 0")
    finally:
        term.close()


@pytest.mark.lab
def test_tmux_real_kvmtui_on_the_lab(lab) -> None:  # type: ignore[no-untyped-def]
    try:
        import kvmtui.core.live  # noqa: F401
    except ImportError as exc:  # pragma: no cover - only while the host model is missing
        pytest.skip(f"kvmtui.core.live (the host model reader) is not importable: {exc}")
    term = Tmux(
        [str(KVMTUI), "lab", "--prefix", lab.prefix, "exec", "--", str(KVMTUI)],
        cwd=str(ROOT),
    )
    try:
        screen = term.wait_for(spec.NAT_BRIDGE, timeout=20)
        screen = term.wait_for(spec.BR_NIC, timeout=10)
        assert "Traceback" not in screen
        assert spec.ISO_BRIDGE in screen and spec.BR_BRIDGE in screen
        assert "nat-light" in screen  # LiveHost names light VMs after their namespace
        term.keys("2")
        screen = term.wait_for("MAC table of")
        for _ in range(3):  # LiveHost's bridge order is its own: step to virbr0
            if f"MAC table of {spec.NAT_BRIDGE} " in screen:
                break
            term.keys("b")
            screen = term.screen()
        term.wait_for(f"MAC table of {spec.NAT_BRIDGE} ")
        screen = term.wait_for(spec.lab_vm("nat-light").mac, timeout=10)
        assert "nat-light" in screen and "learned" in screen
        term.keys("3")
        screen = term.wait_for("host-only")
        assert spec.NAT_NET in screen and spec.ISO_NET in screen
        term.keys("4")
        screen = term.wait_for("Path of")
        assert "running" in screen
        # at 80x24 the table shows a few VMs; which ones depends on the lab (QEMU or not)
        assert sum(vm.name in screen for vm in spec.ALL_VMS) >= 3
        term.keys("q")
        term.wait_for("[exited] 0", timeout=10)
    finally:
        term.close()
