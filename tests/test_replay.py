"""kvmtui record / --replay: the file format, safe creation, playback control, bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kvmtui.core.hosts import HostUnavailable
from kvmtui.core.jsonout import snapshot_json
from kvmtui.core.model import HostSnapshot
from kvmtui.core.recorded import RecordingWriter, create_file, open_recording, read_recording
from kvmtui.lab import spec
from kvmtui.lab.handle import LabHandle

KVMTUI = [sys.executable, "-m", "kvmtui"]


def _write(path: Path, snaps: list[tuple[float, HostSnapshot]]) -> None:
    w = RecordingWriter(create_file(str(path)), started=1000.0)
    for t, s in snaps:
        w.snapshot(s, at=1000.0 + t)
    w.close()


def _snaps() -> list[tuple[float, HostSnapshot]]:
    return [
        (float(i) * 0.05, HostSnapshot(taken_at=1000.0 + i, hostname=f"h{i}")) for i in range(4)
    ]


def test_create_refuses_existing_symlink_and_non_regular(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep")
    link = tmp_path / "rec.pcapng"
    link.symlink_to(target)
    for overwrite in (False, True):
        with pytest.raises(HostUnavailable) as e:
            create_file(str(link), overwrite=overwrite)
        assert e.value.code == 2
    assert target.read_text() == "keep"
    with pytest.raises(HostUnavailable, match="exists"):
        create_file(str(target))
    with pytest.raises(HostUnavailable, match="not a regular file"):
        create_file(str(tmp_path), overwrite=True)
    f = create_file(str(target), overwrite=True)
    f.close()
    assert target.read_text() == ""
    new = tmp_path / "new.pcapng"
    create_file(str(new)).close()
    assert (os.stat(new).st_mode & 0o777) == 0o600


def test_recording_reads_back_in_order(tmp_path: Path) -> None:
    p = tmp_path / "r.pcapng"
    _write(p, _snaps())
    rec = read_recording(str(p))
    assert [s.hostname for _, s in rec.events] == ["h0", "h1", "h2", "h3"]
    assert rec.duration == pytest.approx(0.15)
    assert rec.started == 1000.0


def test_pause_seek_resume(tmp_path: Path) -> None:
    p = tmp_path / "r.pcapng"
    _write(p, [(0.0, HostSnapshot(1.0, "a")), (30.0, HostSnapshot(2.0, "b"))])
    host = open_recording(str(p))
    host.pause()
    assert host.snapshot().hostname == "a"
    host.seek(31)
    assert host.position() == 30.0 and host.snapshot().hostname == "b"
    host.seek(-5)
    assert host.snapshot().hostname == "a"
    seen: list[str] = []
    stop = threading.Event()
    t = threading.Thread(target=host.watch, args=(lambda s: seen.append(s.hostname), stop))
    t.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    host.seek(30)  # a seek while watching delivers the snapshot there at once
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(5)
    assert seen == ["a", "b"]
    assert host.paused


def test_watch_plays_at_recorded_speed_in_order(tmp_path: Path) -> None:
    p = tmp_path / "r.pcapng"
    _write(p, _snaps())
    host = open_recording(str(p))
    seen: list[str] = []
    stop = threading.Event()
    t = threading.Thread(target=host.watch, args=(lambda s: seen.append(s.hostname), stop))
    t.start()
    deadline = time.monotonic() + 10
    while len(seen) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(5)
    assert seen == ["h0", "h1", "h2", "h3"]


@pytest.mark.parametrize("cut", [10, 40, 200, -3])
def test_truncated_and_foreign_files_exit_2_in_one_line(tmp_path: Path, cut: int) -> None:
    good = tmp_path / "r.pcapng"
    _write(good, _snaps())
    bad = tmp_path / "bad"
    bad.write_bytes(good.read_bytes()[:cut])
    for f in (bad, Path("/etc/hostname"), tmp_path / "missing"):
        cp = subprocess.run([*KVMTUI, "--replay", str(f), "inventory", "--json"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
        assert cp.returncode == 2, cp.stderr
        assert cp.stdout == ""
        assert len(cp.stderr.strip().splitlines()) == 1 and "Traceback" not in cp.stderr


@pytest.mark.lab
def test_lab_recording_replays_identically(lab: LabHandle, tmp_path: Path) -> None:
    rec = tmp_path / "lab.pcapng"
    cp = lab.run(lab.host_ns, *KVMTUI, "-c", lab.uri, "record", str(rec), "--seconds", "1",
                 timeout=120)  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    raw = read_recording(str(rec))
    first = raw.events[0][1]
    assert first.bridges and first.vms and first.paths
    # replayed as a user without root or libvirt would: no lab namespace, no -c
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIBVIRT")}
    out = subprocess.run([*KVMTUI, "--replay", str(rec), "inventory", "--json"],
                         capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(json.dumps(snapshot_json(first)))
    vm = first.paths[0].vm
    p = subprocess.run([*KVMTUI, "--replay", str(rec), "path", vm, "--json"],
                       capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["vm"] == vm
    tshark = subprocess.run(["tshark", "-r", str(rec)], capture_output=True, text=True, timeout=60)
    assert tshark.returncode == 0, tshark.stderr


@pytest.mark.lab
def test_lab_recording_with_vm_holds_its_hops_frames(lab: LabHandle, tmp_path: Path) -> None:
    """record --vm: the VM's frames at every hop go into the recording as pcapng blocks (an
    interface per hop) between the snapshots; tshark reads them, the reader counts them, and
    the host model still replays."""
    vm = spec.lab_vm("nat-light")
    ip = lab.wait_ip(vm.name)
    rec = tmp_path / "vm.pcapng"
    pinger = subprocess.Popen(["ip", "netns", "exec", lab.vm_ns(vm.name), "busybox", "ping",
                               "-c", "8", "-i", "0.3", spec.INTERNET_IP],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        cp = lab.run(lab.host_ns, *KVMTUI, "-c", lab.uri, "record", str(rec), "--seconds", "3",
                     "--vm", vm.name, timeout=120)  # fmt: skip
    finally:
        pinger.wait(30)
    assert cp.returncode == 0, cp.stderr
    assert f"{vm.name}'s frames on tap {vm.tap}, bridge {spec.NAT_BRIDGE}" in cp.stderr
    raw = read_recording(str(rec))
    assert raw.frames > 0 and f"and {raw.frames} frames" in cp.stderr
    fields = ["-T", "fields", "-e", "frame.interface_name", "-e", "ip.src", "-e", "ip.dst"]
    t = subprocess.run(["tshark", "-r", str(rec), *fields], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert t.returncode == 0, t.stderr
    # (tshark also lists the snapshots' custom blocks, as records without an interface)
    lines = [ln.split("\t") for ln in t.stdout.splitlines() if ln.split("\t")[0]]
    assert len(lines) == raw.frames
    devs = {ln[0] for ln in lines}
    assert {vm.tap, spec.NAT_BRIDGE, spec.UPLINK} <= devs, devs
    # the VM's pings at the tap with its own address, on the uplink NATed
    assert any(ln[0] == vm.tap and ln[1] == ip and ln[2] == spec.INTERNET_IP for ln in lines)
    assert raw.events and raw.events[0][1].vms
