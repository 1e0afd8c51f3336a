"""Benchmark of the explorer in a real pseudo-terminal (80x24): what a user waits for.

    launch -> first paint        goal < 0.5 s   (the tab bar is on screen)
    launch -> full host tree     goal < 1.5 s   (every bridge and port of the host is on screen)
    key -> screen                goal < 100 ms  (tab switches and bridge switches, while the
                                                 source churns: a new snapshot every 100 ms)

Targets:
    sample  ``python -m tests.ui.sample_app --churn --delay D``: the UI over the sample snapshot,
            the first snapshot delayed by D s (default 0.3, a typical host read), then a new
            snapshot every 100 ms with FDB ages moving and a MAC coming and going.
    lab     the real ``kvmtui -c URI`` run inside the lab's host namespace over LiveHost
            (``--prefix P``, the lab must be up); the lab's own traffic churns it.

Usage: .venv/bin/python bench/ui.py [--target sample|lab] [--prefix kvdev-] [--rounds 5]
Times are wall-clock from fork to the bytes reaching the terminal. Prints which Python ran.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import statistics
import struct
import sys
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kvmtui.lab import spec  # noqa: E402


class Term:
    def __init__(self, argv: list[str], cols: int = 80, rows: int = 24) -> None:
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        self.t0 = time.monotonic()
        pid, fd = pty.fork()
        if pid == 0:  # child
            os.chdir(ROOT)
            os.execvpe(argv[0], argv, env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.pid, self.fd = pid, fd
        self.buf = b""

    def _read(self, timeout: float) -> bytes:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return b""
        try:
            return os.read(self.fd, 65536)
        except OSError:
            return b""

    def wait_for(self, markers: list[bytes], since: int = 0, timeout: float = 20.0) -> float:
        """Seconds (monotonic) when every marker has appeared in the output after ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(m in self.buf[since:] for m in markers):
                return time.monotonic()
            self.buf += self._read(0.005)
        raise TimeoutError(f"{markers} not seen in {timeout} s")

    def press(self, key: bytes, marker: bytes) -> float:
        self.drain()
        since = len(self.buf)
        t = time.monotonic()
        os.write(self.fd, key)
        return self.wait_for([marker], since=since, timeout=5.0) - t

    def drain(self) -> None:
        while chunk := self._read(0.0):
            self.buf += chunk

    def close(self) -> None:
        os.write(self.fd, b"q")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return
            self.drain()
            time.sleep(0.02)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)


def run(target: str, prefix: str, rounds: int, delay: float) -> dict[str, list[float]]:
    py = str(ROOT / ".venv" / "bin" / "python")
    if target == "sample":
        argv = [py, "-m", "tests.ui.sample_app", "--churn", "--delay", str(delay)]
        tree_markers = [b"vnet5", b"ens9", b"virbr1"]
    else:
        argv = ["ip", "netns", "exec", spec.ns_name(prefix, spec.NS_HOST),
                str(ROOT / ".venv" / "bin" / "kvmtui"), "-c", spec.libvirt_uri(prefix)]  # fmt: skip
        tree_markers = [spec.BR_NIC.encode(), spec.ISO_BRIDGE.encode(), b"vnet3"]
    res: dict[str, list[float]] = {"first_paint": [], "full_tree": [], "key": []}
    # each marker appears only once the key took effect (not in the churn of the tab before);
    # "b" steps from the first bridge to the second (sample: virbr0 -> virbr1; lab: br0 -> virbr0)
    second_bridge = b"virbr1" if target == "sample" else spec.NAT_BRIDGE.encode()
    keys = [
        (b"2", b"MAC table of"),
        (b"3", b"DHCP leases"),
        (b"4", b"Path of"),
        (b"1", b"uplink (default route)"),
        (b"2", b"MAC table of"),
        (b"b", second_bridge),
    ]
    for _ in range(rounds):
        term = Term(argv)
        try:
            res["first_paint"].append(term.wait_for([b"Host 1"]) - term.t0)
            res["full_tree"].append(term.wait_for(tree_markers) - term.t0)
            time.sleep(0.5)  # let the churn and the counters poll run
            for key, marker in keys:
                res["key"].append(term.press(key, marker))
                time.sleep(0.15)
        finally:
            term.close()
    return res


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--target", choices=["sample", "lab"], default="sample")
    p.add_argument("--prefix", default=os.environ.get("KVMTUI_LAB_PREFIX", "kvdev-"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--delay", type=float, default=0.3)
    args = p.parse_args()
    py = ROOT / ".venv" / "bin" / "python"
    print(f"python: {os.path.realpath(py)} ({sys.version.split()[0]} for this driver)")
    res = run(args.target, args.prefix, args.rounds, args.delay)
    goals = {"first_paint": 0.5, "full_tree": 1.5, "key": 0.1}
    for name, values in res.items():
        med = statistics.median(values)
        worst = max(values)
        ok = "ok" if worst < goals[name] else "OVER GOAL"
        print(f"{args.target:6} {name:12} median {med * 1000:6.0f} ms  max {worst * 1000:6.0f} ms"
              f"  (n={len(values)}, goal {goals[name] * 1000:.0f} ms) {ok}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
