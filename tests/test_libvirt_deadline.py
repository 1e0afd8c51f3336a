"""Bounded libvirt calls after the connect (issue 13): the session lab's real libvirtd is
stopped (SIGSTOP) once a connection is open, as a deadlocked daemon would be; the read of
networks and VMs, and the lease check, come back at their deadline with one line instead of
hanging. The daemon is continued at the end whatever happens."""

from __future__ import annotations

import os
import signal
import time

import pytest

from kvmtui.capture.dhcp import DhcpTransaction, check_lease
from kvmtui.core import virt
from kvmtui.lab.handle import LabHandle
from kvmtui.lab.procs import PidRecords


def test_a_libvirtd_that_stops_answering_mid_read_gives_a_line_at_the_deadline(
    lab: LabHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = PidRecords(os.path.join(lab.state_dir, "pids")).alive("libvirtd")
    assert pid is not None
    healthy = virt.read_virt(lab.uri)
    assert healthy.connected and healthy.networks  # the same read works while it answers
    monkeypatch.setattr(virt, "READ_TIMEOUT_S", 2.0)
    conn = virt.open_readonly(lab.uri)
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        state = virt.read_virt(lab.uri, conn=conn)
        took = time.monotonic() - t0
        tx = DhcpTransaction(1, "52:54:00:aa:00:01", None, (), "192.168.122.50", None)
        t1 = time.monotonic()
        lease = check_lease(tx, lab.uri, retries=1)
        took_lease = time.monotonic() - t1
    finally:
        os.kill(pid, signal.SIGCONT)
    assert not state.connected and 1.9 < took < 4.0, took
    (p,) = state.problems
    assert "no answer in 2 s while reading networks and VMs" in p.message
    # the lease check's connect is refused or times out, or its read does: never a hang
    assert lease.status == "unchecked" and took_lease < 2 * virt.CONNECT_TIMEOUT_S + 3
    assert virt.read_virt(lab.uri).connected  # and the daemon answers again once continued
