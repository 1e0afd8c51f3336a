"""A libvirt peer that accepts and never answers: every libvirt connect is under a deadline.

Before, ``openReadOnly`` on such a URI blocked for over two minutes with no word, and Ctrl-C then
printed ``SystemError``. The listener is a plain socket on loopback that never reads; nothing on
the host is changed and no outside address is used.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest


@pytest.fixture
def silent_uri() -> Iterator[str]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)  # the kernel completes the TCP handshake; nobody ever answers libvirt's RPC
    try:
        yield f"qemu+tcp://127.0.0.1:{s.getsockname()[1]}/system"
    finally:
        s.close()


def _kvmtui(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvmtui", *args]


def test_inventory_gives_up_at_the_deadline_and_says_why(silent_uri: str) -> None:
    t0 = time.monotonic()
    cp = subprocess.run(_kvmtui("inventory", "--json", "-c", silent_uri, "--connect-timeout", "2"),
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    took = time.monotonic() - t0
    assert took < 20, took  # the old behaviour: more than two minutes
    assert cp.returncode == 0, cp.stderr  # netlink's part of the host is still there
    assert cp.stderr.startswith(f"kvmtui: connecting to {silent_uri} ...")  # after 1 s
    doc = json.loads(cp.stdout)
    msgs = [p["message"] for p in doc["problems"] if p["source"] == "libvirt"]
    assert any("no answer in 2 s" in m for m in msgs), msgs
    assert doc["links"], "the netlink side must not wait for libvirt"


def test_ctrl_c_while_connecting_is_clean(silent_uri: str) -> None:
    p = subprocess.Popen(_kvmtui("path", "some-vm", "-c", silent_uri, "--connect-timeout", "60"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(2.5)
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "SystemError" not in err and "Traceback" not in err, err


def test_bad_deadline_is_one_line() -> None:
    cp = subprocess.run(_kvmtui("inventory", "--connect-timeout", "nan"),
                        capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cp.returncode == 2 and len(cp.stderr.strip().splitlines()) == 1, cp.stderr
