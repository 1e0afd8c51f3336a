"""Issue 13's lab hardening on a lab of its own (prefix kvl2-, light VMs only): the libvirt
sockets are root's only, and ``lab down`` finishes while libvirtd is stopped (SIGSTOP)."""

from __future__ import annotations

import os
import signal
import stat

from labtools import lab_cli

from kvmtui.lab import spec
from kvmtui.lab.procs import PidRecords, netns_inode, start_time

PREFIX = "kvl2-"


def test_socket_root_only_and_down_survives_a_stopped_libvirtd() -> None:
    state = spec.state_dir(PREFIX)
    try:
        cp = lab_cli(PREFIX, "up", "--no-qemu", "--quiet", timeout=200)
        assert cp.returncode == 0, cp.stderr
        run = os.path.join(state, "run", "libvirt")
        assert stat.S_IMODE(os.stat(run).st_mode) == 0o700
        for sock in ("libvirt-sock", "libvirt-sock-ro"):
            mode = stat.S_IMODE(os.stat(os.path.join(run, sock)).st_mode)
            assert mode & 0o077 == 0, f"{sock} is mode {mode:o}"
        pid = PidRecords(os.path.join(state, "pids")).alive("libvirtd")
        assert pid is not None
        st = start_time(pid)
        os.kill(pid, signal.SIGSTOP)
        cp = lab_cli(PREFIX, "down", timeout=90)
        assert cp.returncode == 0, cp.stderr
        assert "did not answer" in cp.stdout and f"pid {pid}" in cp.stdout
        assert start_time(pid) != st  # killed by its recorded pid
        assert netns_inode(f"{PREFIX}host") is None
        assert not os.path.exists(state)
    finally:
        lab_cli(PREFIX, "down", timeout=120)
