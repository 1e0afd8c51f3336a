"""The TPACKET_V3 ring on a real veth: under a backlog, older blocks are released unread.

Frames carry a sequence number; the ring must count every frame it hands back to the kernel,
copy only the newest (``keep``), and stay in step with the kernel for the next read.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator

import pytest

from kvmtui.capture.ring import PacketRing
from kvmtui.core.netns import in_netns

NS = os.environ.get("KVMTUI_CAPTURE_PREFIX", "kvE-") + "rk"  # the capture tests' prefix
ETHERTYPE = 0x88B5  # IEEE local experimental: nothing else on the link uses it


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture
def veth() -> Iterator[str]:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "-n", NS, "link", "add", "name", "ra", "type", "veth", "peer", "name", "rb")
        sh("ip", "-n", NS, "link", "set", "ra", "up")
        sh("ip", "-n", NS, "link", "set", "rb", "up")
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def send(ns: str, first: int, count: int) -> None:
    with in_netns(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.bind(("ra", 0))
        head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ETHERTYPE)
        for seq in range(first, first + count):
            s.send(head + struct.pack("!I", seq) + b"\x00" * 60)
    finally:
        s.close()


def seqs(frames: list[tuple[int, int, int, int, bytes]]) -> list[int]:
    return [struct.unpack_from("!I", f[4], 14)[0] for f in frames]


def test_backlog_keeps_the_newest_frames_and_counts_all(veth: str) -> None:
    ring = PacketRing(
        "rb", veth, f"ether proto {ETHERTYPE:#x}", block_size=1 << 16, block_nr=32, retire_ms=1
    )
    try:
        send(veth, 0, 3000)
        time.sleep(0.1)  # let the kernel retire the last, partly filled block
        got: list[tuple[int, int, int, int, bytes]] = []
        total = ring.read(got, keep=500)
        assert total == 3000 and ring.stats().dropped == 0
        kept = seqs(got)
        assert 500 <= len(kept) < 3000  # whole blocks: at least keep, never everything
        assert kept == list(range(3000 - len(kept), 3000))  # the newest, in order
        assert ring.read([], keep=500) == 0  # every block went back to the kernel
        send(veth, 3000, 10)
        time.sleep(0.1)
        more: list[tuple[int, int, int, int, bytes]] = []
        assert ring.read(more) == 10
        assert seqs(more) == list(range(3000, 3010))  # still in step with the kernel
    finally:
        ring.close()


def test_keep_zero_copies_nothing(veth: str) -> None:
    ring = PacketRing("rb", veth, f"ether proto {ETHERTYPE:#x}", block_size=1 << 16, retire_ms=1)
    try:
        send(veth, 0, 200)
        time.sleep(0.1)
        got: list[tuple[int, int, int, int, bytes]] = []
        assert ring.read(got, keep=0) == 200 and got == []
    finally:
        ring.close()
