"""``kvmtui --vm VM [--capture]``, ``r`` and ``kvmtui serve``'s bad input."""

from __future__ import annotations

import socket
import subprocess
import sys

from kvmtui.ui.screens.capture import CaptureScreen
from tests.ui.conftest import make_app
from tests.ui.helpers import loaded, wait_for
from tests.ui.sample import NAT_LIGHT


async def test_vm_by_short_name_is_selected_and_captured() -> None:
    short = NAT_LIGHT.name.split("-", 1)[-1] if NAT_LIGHT.name.startswith("kv") else NAT_LIGHT.name
    app = make_app(start_vm=short, start_capture=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await wait_for(pilot, lambda: isinstance(app.screen, CaptureScreen))
        assert app.screen.vm == NAT_LIGHT.name  # type: ignore[attr-defined]
        assert app.focus_identity is not None and app.focus_identity.vm == NAT_LIGHT.name


async def test_unknown_vm_ends_with_one_line_and_exit_2() -> None:
    app = make_app(start_vm="no-such-vm")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.exit_message is not None)
    assert app.return_code == 2
    assert app.exit_message is not None and "no-such-vm" in app.exit_message
    assert "\n" not in app.exit_message


async def test_r_says_it_re_read() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await wait_for(
            pilot, lambda: any("re-read the host" in str(n.message) for n in app._notifications)
        )


def test_serve_port_in_use_is_one_line_exit_2() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = subprocess.run(
            [sys.executable, "-m", "kvmtui", "serve", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert p.returncode == 2
    assert (
        p.stderr.strip()
        == f"kvmtui serve: port {port} on 127.0.0.1 is in use (pick another with --port)"
    )
