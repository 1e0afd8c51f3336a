"""The capture view names the kernel's drop reason, on the real lab.

An admin breaks the lab's KVM host the usual way (``iptables -I FORWARD 1 -s <the VM> -j DROP``
in its host namespace); the capture screen of nat-light, opened through LiveHost with no extra
key, must say on the "ends at" row where and why the kernel freed the VM's pings: at the NAT
bridge, by the firewall. The rule is removed in a finalizer.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kvmtui.lab import spec
from kvmtui.ui.widgets.capture_detail import CaptureDetail
from tests.ui.helpers import wait_for
from tests.ui.test_capture_screen import (
    NAT_LIGHT,
    PING_SIZE,
    _ours,
    _save,
    lab_app,
    lab_capture,
    table_of,
)


@pytest.fixture
def dropped(lab: Any) -> Iterator[str]:
    """nat-light's IP, with the host's FORWARD chain dropping everything from it."""
    ip = lab.wait_ip(NAT_LIGHT.name)
    rule = ["FORWARD", "-s", f"{ip}/32", "-j", "DROP"]
    cp = lab.run(lab.host_ns, "iptables", "-I", rule[0], "1", *rule[1:])
    assert cp.returncode == 0, cp.stderr
    try:
        yield ip
    finally:
        lab.run(lab.host_ns, "iptables", "-D", *rule)


@pytest.mark.lab
async def test_lab_firewall_drop_is_named_on_the_ends_at_row(lab: Any, dropped: str) -> None:
    ip = dropped
    app = lab_app(lab)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await lab_capture(pilot, NAT_LIGHT.mac)
        t = table_of(screen)
        cp = await asyncio.to_thread(
            lab.run, lab.vm_ns(NAT_LIGHT.name), "busybox", "ping", "-c", "3", "-i", "0.3",
            "-W", "1", "-s", str(PING_SIZE), spec.INTERNET_IP,
        )  # fmt: skip
        assert "0 packets received" in cp.stdout, cp.stdout + cp.stderr  # the break holds

        def fated() -> list[Any]:
            return [(k, r) for k, r in _ours(screen, ip, spec.INTERNET_IP) if r.fate]

        await wait_for(pilot, lambda: len(fated()) >= 1, timeout=20)
        key, row = fated()[0]
        assert row.fate.hop == spec.NAT_BRIDGE and row.fate.reason == "NETFILTER_DROP"
        text = " ".join(" ".join(t.text_of(key)).split())
        assert f"✗ dropped at {spec.NAT_BRIDGE} by the firewall" in text, text
        t.follow = False
        t.move_cursor(row=t.keys.index(key))
        detail = screen.query_one(CaptureDetail)
        await wait_for(pilot, lambda: detail.key == key)
        head = str(detail.query_one("#detail-head").render())
        assert f"kernel: NETFILTER_DROP in {row.fate.location}" in head
        _save(app, "capture-fate-80x24.svg")
    # closing the app stopped the tracer: no tracefs instance of this process is left
    deadline = time.monotonic() + 10
    while ours_left() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert ours_left() == []


def ours_left() -> list[str]:
    from kvmtui.doctor.droptrace import kvmtui_instances, tracefs_root

    root = tracefs_root()
    assert root is not None
    return [n for n in kvmtui_instances(root) if n.split("-")[1] == str(os.getpid())]
