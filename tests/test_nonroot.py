"""Degraded modes, each in a subprocess: not root (privileges dropped with setpriv), no libvirt
module, libvirtd unreachable. Each prints what it can, states each missing part in one line,
exits 0, and shows no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kvmtui.lab import spec
from kvmtui.lab.handle import LabHandle

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NO_DAEMON = "qemu:///system?socket=/nonexistent/kvC/libvirt-sock"


def run(cmd: list[str], ns: str | None = None) -> subprocess.CompletedProcess[str]:
    full = (["ip", "netns", "exec", ns] if ns else []) + cmd
    return subprocess.run(
        full, capture_output=True, text=True, timeout=60, cwd="/", stdin=subprocess.DEVNULL
    )


def kvmtui(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvmtui", *args]


def no_traceback(cp: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in cp.stdout + cp.stderr, cp.stderr
    assert cp.returncode == 0, (cp.returncode, cp.stderr)


@pytest.mark.lab
def test_not_root_on_the_lab(lab: LabHandle) -> None:
    cp = run(NOBODY + kvmtui("inventory", "--json", "-c", lab.uri), ns=lab.host_ns)
    no_traceback(cp)
    doc = json.loads(cp.stdout)
    # netlink dumps need no privilege: bridges, ports and the FDB are all there
    bridges = {b["name"]: b for b in doc["bridges"]}
    assert {spec.NAT_BRIDGE, spec.ISO_BRIDGE, spec.BR_BRIDGE} <= set(bridges)
    assert bridges[spec.BR_BRIDGE]["uplinks"] == [spec.BR_NIC]
    macs = {f["mac"] for f in bridges[spec.NAT_BRIDGE]["fdb"]}
    assert bridges[spec.NAT_BRIDGE]["mac"] in macs
    # namespace guests are still found (their MAC needs setns, i.e. root)
    light = {v["name"] for v in doc["vms"] if v["kind"] == "light"}
    assert {lab.vm_ns(vm.name) for vm in spec.LIGHT_VMS} == light
    problems = {p["source"]: p["message"] for p in doc["problems"]}
    assert set(problems) >= {"libvirt", "firewall", "netlink"}
    assert problems["libvirt"].startswith(f"libvirt: cannot connect to {lab.uri} (")
    assert "run as root" in problems["libvirt"]
    assert problems["firewall"] == (
        "firewall: cannot read nftables rules (Operation not permitted): "
        "run as root to check NAT rules"
    )
    assert "run as root" in problems["netlink"]
    if lab.qemu:
        assert "processes" in problems
    for msg in problems.values():
        assert "\n" not in msg

    cp = run(NOBODY + kvmtui("inventory", "-c", lab.uri), ns=lab.host_ns)
    no_traceback(cp)
    assert "BRIDGES" in cp.stdout and f"  {spec.BR_BRIDGE}  up" in cp.stdout
    assert "! libvirt: cannot connect" in cp.stdout and "! firewall:" in cp.stdout


def test_not_root_in_the_root_namespace() -> None:
    cp = run(NOBODY + kvmtui("inventory", "--json", "-c", NO_DAEMON))
    no_traceback(cp)
    doc = json.loads(cp.stdout)
    assert any(lk["name"] == "lo" for lk in doc["links"])
    sources = [p["source"] for p in doc["problems"]]
    assert "libvirt" in sources and "firewall" in sources


def test_libvirtd_unreachable() -> None:
    cp = run(kvmtui("inventory", "-c", NO_DAEMON))
    no_traceback(cp)
    assert (
        f"! libvirt: cannot connect to {NO_DAEMON} (Failed to connect socket to "
        "'/nonexistent/kvC/libvirt-sock': No such file or directory): "
        "is libvirtd running? Try -c URI"
    ) in cp.stdout
    assert "NETWORKS\n  (none)" in cp.stdout
    cp = run(kvmtui("path", "nat-qemu", "-c", NO_DAEMON))
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
    assert "no VM, tap or MAC 'nat-qemu'" in cp.stderr and "! libvirt:" in cp.stderr


def test_no_libvirt_module() -> None:
    # stand-in for a host without libvirt-python: the import is made to fail in the child
    code = (
        "import sys; sys.modules['libvirt'] = None; from kvmtui.cli import main; "
        "sys.exit(main(['inventory', '--json']))"
    )
    cp = run([sys.executable, "-c", code])
    no_traceback(cp)
    doc = json.loads(cp.stdout)
    (p,) = [p for p in doc["problems"] if p["source"] == "libvirt"]
    assert p["message"] == (
        "libvirt: the Python module 'libvirt' is not installed: pip install libvirt-python "
        "(networks and VMs are not shown)"
    )
    assert doc["networks"] == [] and any(lk["name"] == "lo" for lk in doc["links"])
