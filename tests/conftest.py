"""Session fixtures: the real lab, and a guard that the root namespace is left untouched.

``lab`` (session scope) brings the lab up with ``kvmtui lab up`` (a subprocess, so the CLI is
what is tested) and returns a ``kvmtui.lab.handle.LabHandle``. Environment:

    KVMTUI_LAB_PREFIX   prefix of the lab's namespaces (default ``kvmtuit-``)
    KVMTUI_LAB_QEMU=0   light VMs only (no QEMU guests)
    KVMTUI_LAB_REUSE=1  use the lab already up under that prefix (bring it up if not) and leave
                        it up at the end; otherwise the lab is torn down at the end, even on
                        failure

The root-namespace guard records the root namespace's links, routes, ip_forward and nft
ruleset when the session starts, and compares them after everything (the lab's teardown
included) in ``pytest_sessionfinish``: any difference is reported and fails the run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from labtools import NOTHING, lab_cli, lab_inodes, lab_traces, root_differences, root_snapshot

from kvmtui.lab.handle import LabHandle

LAB_PREFIX = os.environ.get("KVMTUI_LAB_PREFIX", "kvmtuit-")
LAB_QEMU = os.environ.get("KVMTUI_LAB_QEMU", "1") != "0"
LAB_REUSE = os.environ.get("KVMTUI_LAB_REUSE") == "1"


# -- the root namespace guard ------------------------------------------------------------------


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_ROOT_KEY] = root_snapshot() if os.geteuid() == 0 else None


_ROOT_KEY = pytest.StashKey[dict[str, Any] | None]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_ROOT_KEY, None)
    if before is None:
        return
    diffs = root_differences(before, root_snapshot())
    if diffs:
        msg = "ROOT NAMESPACE CHANGED by the test session:\n  " + "\n  ".join(diffs)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(msg, red=True, bold=True)
        else:
            print(msg, file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def root_before(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The root namespace as it was when the session started."""
    snap = request.config.stash.get(_ROOT_KEY, None)
    if snap is None:
        pytest.fail("the root-namespace guard needs root")
    return snap


# -- the lab -----------------------------------------------------------------------------------


_LAB_UP: dict[str, list[str]] = {}  # the session lab's namespaces while it is up


@pytest.fixture(autouse=True)
def _lab_still_there(request: pytest.FixtureRequest) -> Iterator[None]:
    """The session lab is shared: a test that takes any of its namespaces away (a teardown with
    the wrong prefix, a kill by pattern) broke every lab test after it with misleading errors.
    Name the test that did it."""
    yield
    want = _LAB_UP.get("namespaces")
    if want:
        gone = [ns for ns in want if not os.path.exists(f"/run/netns/{ns}")]
        if gone:
            _LAB_UP.clear()  # said once
            pytest.fail(f"the session lab lost {', '.join(gone)} during {request.node.nodeid}")


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    """The lab, up (light VMs, and QEMU guests unless KVMTUI_LAB_QEMU=0)."""
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (namespaces, libvirtd)")
    from kvmtui.lab.builder import Lab, qemu_available

    qemu = LAB_QEMU and qemu_available()
    if LAB_QEMU and not qemu:
        pytest.fail("QEMU guests asked for but qemu-system-x86_64 or /boot/vmlinuz-* is missing")
    args = ["up", "--quiet"] + ([] if qemu else ["--no-qemu"])
    t0 = time.monotonic()
    try:
        cp = lab_cli(LAB_PREFIX, *args, timeout=400)
        if cp.returncode != 0:
            pytest.fail(f"lab up failed ({cp.returncode}): {cp.stderr.strip()[-2000:]}")
        print(f"\nlab {LAB_PREFIX} up in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        # with REUSE, a lab that runs its QEMU guests keeps them (and the handle says so)
        _LAB_UP["namespaces"] = sorted(lab_traces(LAB_PREFIX)["namespaces"])  # type: ignore[arg-type]
        yield LabHandle.for_prefix(LAB_PREFIX, Lab(LAB_PREFIX).qemu_enabled())
        _LAB_UP.clear()
    finally:
        if not LAB_REUSE:
            # the session lab's down is checked too (QEMU guests and libvirt's dnsmasqs included):
            # anything left is an error of the last test's teardown, which fails the run
            inodes = lab_inodes(LAB_PREFIX)
            cp = lab_cli(LAB_PREFIX, "down", timeout=120)
            assert cp.returncode == 0, f"lab down failed: {cp.stderr.strip()}"
            left = lab_traces(LAB_PREFIX, inodes)
            assert left == NOTHING, f"lab down left: {left}"
