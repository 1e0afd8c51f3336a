"""Capture exports never follow a symlink, never overwrite silently, are private (0600 in a 0700
folder outside /tmp), and ``trace --pcap`` refuses a bad path before it captures anything.
Each of these failed on the old ``open(path, "wb")`` export to /tmp."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kvmtui.capture.pcapng import ExportRefused, export_dir, open_export
from kvmtui.capture.pcapstream import PcapngStream, write_rows


def _write(path: Path, overwrite: bool = False) -> int:
    """One row of a real capture written with the exporter: the frames written (one per hop
    it was seen on)."""
    return write_rows(str(path), _rows()[:1], overwrite)


def _one_row_frames() -> int:
    return len(_rows()[0].hops)


def test_symlink_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "kvmtui-vm.pcapng"
    link.symlink_to(victim)
    with pytest.raises(ExportRefused, match="symbolic link"):
        _write(link)
    with pytest.raises(ExportRefused, match="symbolic link"):
        _write(link, overwrite=True)
    assert victim.read_text() == "precious"


def test_existing_file_needs_overwrite_and_must_be_regular(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"old")
    with pytest.raises(ExportRefused, match="exists"):
        _write(path)
    assert path.read_bytes() == b"old"
    assert _write(path, overwrite=True) == _one_row_frames()
    assert path.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header now
    with pytest.raises(ExportRefused, match="not a regular file"):
        _write(tmp_path, overwrite=True)


def test_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new.pcapng"
    old = os.umask(0)
    try:
        _write(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_default_folder_is_private_and_not_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    folder = export_dir()
    assert folder == str(tmp_path / "data" / "kvmtui" / "captures")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    from kvmtui.ui.capture_model import default_export_path

    path = default_export_path("web1")
    assert path.startswith(folder + "/kvmtui-web1-")  # not /tmp/kvmtui-web1-DATE.pcapng


def test_dash_is_standard_output() -> None:
    assert open_export("-") is sys.stdout.buffer


@pytest.mark.parametrize("target", ["/proc/x.pcapng", "/nonexistent-dir/x.pcapng"])
def test_trace_refuses_a_bad_pcap_path_before_capturing(target: str) -> None:
    cp = subprocess.run(
        [sys.executable, "-m", "kvmtui", "trace", "any-vm", "--pcap", target],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 2, cp.stderr
    assert "capturing" not in cp.stderr  # refused before any capture started
    assert len(cp.stderr.strip().splitlines()) == 1


def test_trace_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "keep.pcapng"
    path.write_text("keep")
    cp = subprocess.run(
        [sys.executable, "-m", "kvmtui", "trace", "any-vm", "--pcap", str(path)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 2 and "--overwrite" in cp.stderr
    assert path.read_text() == "keep"


def _rows() -> list[Any]:
    from tests.ui.test_capture_screen import nat_capture  # a NAT capture made of real frames

    return nat_capture()[0]


def _tshark_count(path: str) -> int:
    r = subprocess.run(["tshark", "-r", path, "-T", "fields", "-e", "frame.number"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return len(r.stdout.split())


def test_stream_rotates_like_tcpdump_C_and_W(tmp_path: Path) -> None:
    rows = _rows()
    sightings = sum(len(r.hops) for r in rows)
    base = str(tmp_path / "rot.pcapng")
    s = PcapngStream(base, max_bytes=1500)
    s.write_rows(rows)
    s.close()
    assert s.error is None and s.frames == sightings
    assert len(s.names) >= 3 and s.names[:2] == [base, base + "1"]
    assert sum(_tshark_count(n) for n in s.names) == sightings  # every file valid on its own
    ring = str(tmp_path / "ring.pcapng")
    s = PcapngStream(ring, max_bytes=1500, files=2)
    for _ in range(3):
        s.write_rows(rows)
    s.close()
    assert s.names == [ring, ring + "1"]  # two names, reused in turn
    assert not os.path.exists(ring + "2")


def test_rotation_refused_by_a_planted_file_stops_writing_and_keeps_the_files(
    tmp_path: Path,
) -> None:
    """Someone put a file at the next rotation name: it is neither overwritten nor followed;
    writing stops with the reason (as on a full disk) and what was written reads back whole."""
    rows = _rows()
    base = str(tmp_path / "rot.pcapng")
    (tmp_path / "rot.pcapng1").write_text("not yours")
    os.symlink("/etc/passwd", tmp_path / "rot.pcapng2")
    s = PcapngStream(base, max_bytes=1500)
    for _ in range(3):
        s.write_rows(rows)  # raises nothing
    s.close()
    assert s.error is not None and "cannot open " + base + "1" in s.error
    assert s.names == [base] and s.frames > 0
    assert _tshark_count(base) == s.frames
    assert (tmp_path / "rot.pcapng1").read_text() == "not yours"


def test_stream_on_a_full_disk_ends_with_a_valid_file(tmp_path: Path) -> None:
    """A real full filesystem: a 64 KiB tmpfs in a mount namespace of its own (nothing mounted
    on the host). The file is cut back to its last whole block and tshark reads it."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root (a tmpfs in its own mount namespace)")
    script = f"""
import sys, subprocess
sys.path.insert(0, {str(Path(__file__).parents[2])!r})
from tests.capture.test_export_safety import _rows
from kvmtui.capture.pcapstream import PcapngStream
s = PcapngStream("{tmp_path}/full/x.pcapng")
rows = _rows()
for _ in range(400):
    s.write_rows(rows)
    s.flush()
    if s.error:
        break
s.close()
r = subprocess.run(["tshark", "-r", "{tmp_path}/full/x.pcapng", "-T", "fields", "-e",
                    "frame.number"], capture_output=True, text=True)
print(s.frames, len(r.stdout.split()), r.returncode, repr(s.error))
"""
    (tmp_path / "full").mkdir()
    cp = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"mount -t tmpfs -o size=64k kvmtuit-full {tmp_path}/full && {sys.executable} -c \"$0\"",
         script],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    frames, read_back, rc, error = cp.stdout.split(maxsplit=3)
    assert "disk is full" in error
    assert rc == "0" and int(frames) > 0 and int(read_back) == int(frames)
    assert not os.listdir(tmp_path / "full")  # the tmpfs went with its namespace


def test_fast_epb_is_the_same_block_as_epb() -> None:
    from kvmtui.capture.pcapng import epb, epb_plain

    for n in range(0, 70):
        for out in (True, False):
            data = bytes(range(n))
            ts = 1_764_000_000_123_456_789 + n
            assert epb_plain(3, ts, data, n + 7 * (n % 2), out) == epb(
                3, ts, data, n + 7 * (n % 2), out
            )


def test_trace_of_an_unknown_vm_leaves_no_empty_file(tmp_path: Path) -> None:
    """The file is opened before the capture (so a bad path is refused first); when the
    capture then cannot start, the empty file goes again."""
    path = tmp_path / "none.pcapng"
    cp = subprocess.run(
        [sys.executable, "-m", "kvmtui", "trace", "no-such-vm-kvx", "--pcap", str(path),
         "--connect-timeout", "2"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 2 and "no-such-vm-kvx" in cp.stderr, cp.stderr
    assert not path.exists()
