"""The drop tracer leaves nothing in tracefs: after a normal end, SIGTERM, SIGINT, a crash of its
reader thread, and it removes a dead process's stale instance on the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "capture"))

import topo as T
from topo import Topo

from kvmtui.doctor.droptrace import (
    DropTracer,
    TraceUnavailable,
    kvmtui_instances,
    tracefs_root,
)

P = os.environ.get("KVMTUI_TRACER_PREFIX", "kvd2a-")[:-2] + "c-"


def root() -> str:
    r = tracefs_root()
    assert r is not None, "tracefs should be there (LAB-NOTES)"
    return r


def of_pid(pid: int) -> list[str]:
    return [n for n in kvmtui_instances(root()) if n.startswith(f"kvmtui-{pid}-")]


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture(scope="module")
def topo() -> Iterator[Topo]:
    if os.geteuid() != 0:
        pytest.fail("these tests need root (namespaces, tracefs)")
    t = Topo(P)
    try:
        yield t.up()
    finally:
        t.down()


def test_normal_end_removes_the_instance() -> None:
    t = DropTracer(["lo"]).start()
    assert t.inst is not None and os.path.isdir(t.inst)
    assert of_pid(os.getpid())
    t.stop()
    assert of_pid(os.getpid()) == []


def test_stale_instance_of_a_dead_process_goes_on_next_start() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = os.path.join(root(), "instances", f"kvmtui-{dead.pid}-1-0")
    os.mkdir(stale)
    try:
        with DropTracer(["lo"]):
            assert not os.path.exists(stale)
    finally:
        if os.path.exists(stale):
            os.rmdir(stale)
    assert of_pid(dead.pid) == [] and of_pid(os.getpid()) == []


def test_reader_thread_crash_removes_the_instance() -> None:
    t = DropTracer(["lo"]).start()
    inst = t.inst
    assert inst and t._fd is not None
    os.close(t._fd)  # the reader's next select() fails: the thread dies
    assert wait_for(lambda: not t.running, 10)
    assert not os.path.exists(inst)
    assert t.error and t.error.startswith("drop tracing stopped")
    t.stop()


def test_only_root_one_line() -> None:
    code = (
        "from kvmtui.doctor.droptrace import DropTracer, TraceUnavailable\n"
        "try:\n DropTracer(['lo']).start()\nexcept TraceUnavailable as e:\n print(e)\n"
    )
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )  # fmt: skip
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.strip() == "drop tracing needs root (tracefs): kernel drops not shown"


def test_no_devices_is_one_line() -> None:
    with pytest.raises(TraceUnavailable, match="no device"):
        DropTracer(["bad name with spaces"]).start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_trace_leaves_nothing(topo: Topo, sig: signal.Signals) -> None:
    stop = threading.Event()

    def ping() -> None:
        while not stop.is_set():
            topo.ping(T.NAT_VM, T.INET_IP, count=1)

    cmd = ["ip", "netns", "exec", topo.host, sys.executable, "-m", "kvmtui", "trace",
           f"{P}vn", "--count", "1000", "--timeout", "60"]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    try:
        # `ip netns exec` execs the command: the pid is kvmtui's
        assert wait_for(lambda: bool(of_pid(p.pid)), 30), "the trace made no instance"
        assert p.stdout is not None
        p.stdout.readline()  # it is tracing and printing
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
    finally:
        stop.set()
        if p.poll() is None:
            p.kill()
    pinger.join(10)
    assert "Traceback" not in err, err
    assert of_pid(p.pid) == []


def test_sightings_pause_in_a_flood_with_nothing_dropped_and_resume_at_a_drop(
    topo: Topo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A healthy flood costs one trace event per packet per device for nothing: the tracer
    pauses those and keeps kfree_skb on; a firewall drop then resumes them, and the drops
    that follow are placed on their device again. The flood here is a fast ping with the
    threshold lowered to its rate (the bench measures the real one)."""
    from kvmtui.doctor import droptrace

    monkeypatch.setattr(droptrace, "FLOOD_EVENTS_S", 40)
    monkeypatch.setattr(droptrace, "QUIET_S", 0.3)

    def nft(rule: str) -> None:
        subprocess.run(["ip", "netns", "exec", topo.host, "nft", rule], check=True)

    def v4(drops: list[droptrace.Drop]) -> list[droptrace.Drop]:
        return [d for d in drops if d.protocol == 0x0800]

    with DropTracer(["vnet0", "virbr0", "wan0"]) as t:
        assert "100 packets received" in topo.ping(T.NAT_VM, T.INET_IP, count=100, interval=0.01)
        assert wait_for(lambda: t.paused >= 1, 5), (t.paused, t.events)
        assert not v4(t.drops())  # (the namespaces' own IPv6 chatter has drops of its own)
        nft("add table ip kvd_drop")
        try:
            nft("add chain ip kvd_drop fw { type filter hook forward priority -10; }")
            nft(f"add rule ip kvd_drop fw ip saddr {T.NAT_VM.ip} drop")
            topo.ping(T.NAT_VM, T.INET_IP, count=12, interval=0.1)
            assert wait_for(lambda: bool(v4(t.drops())), 5), (t.paused, t.events)
        finally:
            nft("delete table ip kvd_drop")
        drops = v4(t.drops())
    assert all(d.reason == "NETFILTER_DROP" for d in drops), drops
    assert {d.hop for d in drops} <= {"vnet0", "virbr0"} and len(drops) >= 5, drops
