"""The break-the-lab matrix: every scenario is done the way an admin would break a host
(``kvmtui lab break``: sysctl, ip, bridge, iptables, kill), then ``kvmtui doctor VM --json`` is
asked, inside the lab's KVM host namespace, what is wrong. kvmtui is never told the answer: the
test asserts the doctor's top finding (code and hop) and exit code 1, and after ``kvmtui lab
fix`` that the lab is healthy again (no error finding, exit 0; the isolated VMs an info)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest
from labtools import lab_cli

from kvmtui.lab import spec
from kvmtui.lab.breaks import SCENARIOS
from kvmtui.lab.handle import LabHandle

pytestmark = pytest.mark.lab


def doctor(lab: LabHandle, *args: str) -> tuple[int, dict[str, Any]]:
    cp = subprocess.run(
        ["ip", "netns", "exec", lab.host_ns, sys.executable, "-m", "kvmtui",
         "-c", spec.libvirt_uri(lab.prefix), "doctor", *args, "--json"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert "Traceback" not in cp.stderr, cp.stderr
    return cp.returncode, json.loads(cp.stdout)


def _top(data: dict[str, Any]) -> dict[str, Any] | None:
    for vm in data["vms"]:
        for nic in vm["nics"]:
            if nic["findings"]:
                return dict(nic["findings"][0])
    return None


def _errors(data: dict[str, Any]) -> list[str]:
    return [
        f"{vm['name']}: {f['code']} {f['hop']} {f['summary']}"
        for vm in data["vms"]
        for nic in vm["nics"]
        for f in nic["findings"]
        if f["severity"] == "error"
    ]


def _wait_healthy(lab: LabHandle, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        code, data = doctor(lab)
        if code == 0 or time.monotonic() > deadline:
            return code, data
        time.sleep(0.5)


def test_healthy_lab_has_no_error_finding(lab: LabHandle) -> None:
    code, data = _wait_healthy(lab)
    assert code == 0, _errors(data)
    assert not _errors(data)
    iso = [vm for vm in data["vms"] if vm["name"].endswith("iso-a")]
    assert iso and iso[0]["nics"][0]["findings"][0]["code"] == "network.isolated"
    assert iso[0]["nics"][0]["verdict"] == "ok"


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_doctor_names_the_break(lab: LabHandle, sc: Any) -> None:
    cp = lab_cli(lab.prefix, "break", sc.name)
    assert cp.returncode == 0, cp.stderr
    try:
        deadline = time.monotonic() + 15
        while True:
            code, data = doctor(lab, sc.vm)
            top = _top(data)
            if (top and top["code"] == sc.expect_code) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert top is not None, data
        assert (top["code"], top["hop"]) == (sc.expect_code, sc.expect_hop), data
        assert code == 1
        assert top["fix"], top
        assert top["evidence"], top
    finally:
        fixed = lab_cli(lab.prefix, "fix")
        assert fixed.returncode == 0, fixed.stderr
    code, data = _wait_healthy(lab)
    assert code == 0, f"after lab fix: {_errors(data)}"


def test_unknown_vm_is_one_line_exit_2(lab: LabHandle) -> None:
    cp = subprocess.run(
        ["ip", "netns", "exec", lab.host_ns, sys.executable, "-m", "kvmtui",
         "-c", spec.libvirt_uri(lab.prefix), "doctor", "no-such-vm" * 500],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cp.returncode == 2
    assert len(cp.stderr.strip().splitlines()) == 1
    assert len(cp.stderr) < 400
    assert "nat-light" in cp.stderr


def test_break_list_and_unknown_scenario(lab: LabHandle) -> None:
    cp = lab_cli(lab.prefix, "break", "--list")
    assert cp.returncode == 0
    assert len([s for s in SCENARIOS if s.name in cp.stdout]) == len(SCENARIOS) >= 12
    bad = lab_cli(lab.prefix, "break", "no-such-break")
    assert bad.returncode == 2 and "no scenario" in bad.stderr
