"""Processes and commands of the lab: run a tool, start a daemon in a namespace, record its PID.

Every process the lab starts is recorded as ``pids/NAME.pid`` in the lab's folder: its PID and
its start time (field 22 of ``/proc/PID/stat``), so a recycled PID is never mistaken for ours.
``lab down`` kills by these records, then sweeps what is left in the lab's namespaces (a process
belongs to a namespace when ``/proc/PID/ns/net`` is that namespace's inode).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence


class LabError(Exception):
    """A failure with a one-line message for the user (no traceback)."""


def run(*cmd: str, ns: str | None = None, check: bool = True, timeout: float = 30.0) -> str:
    """Run a command (in namespace ``ns``), return its stdout; LabError on failure."""
    argv = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    try:
        cp = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise LabError(f"command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out after {timeout:.0f} s: {' '.join(argv)}") from None
    if check and cp.returncode != 0:
        err = (cp.stderr.strip().splitlines() or [f"exit status {cp.returncode}"])[-1]
        raise LabError(f"{' '.join(argv)}: {err}")
    return cp.stdout


def ok(*cmd: str, ns: str | None = None) -> bool:
    """True when the command succeeds (its output is not read)."""
    argv = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    cp = subprocess.run(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return cp.returncode == 0


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


class PidRecords:
    """The ``pids/`` folder of a lab: one file per started process."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def path(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.pid")

    def record(self, name: str, pid: int) -> None:
        os.makedirs(self.folder, exist_ok=True)
        st = start_time(pid)
        tmp = self.path(name) + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{pid} {st if st is not None else 0}\n")
        os.replace(tmp, self.path(name))

    def read(self, name: str) -> tuple[int, int] | None:
        try:
            with open(self.path(name)) as f:
                pid_s, st_s = f.read().split()[:2]
            return int(pid_s), int(st_s)
        except (OSError, ValueError):
            return None

    def alive(self, name: str) -> int | None:
        """The recorded PID when that very process is still running, else None."""
        rec = self.read(name)
        if rec is None:
            return None
        pid, st = rec
        return pid if start_time(pid) == st else None

    def names(self) -> list[str]:
        try:
            return sorted(n[:-4] for n in os.listdir(self.folder) if n.endswith(".pid"))
        except OSError:
            return []

    def kill(self, name: str) -> bool:
        """Kill the recorded process (and its process group when it leads one)."""
        pid = self.alive(name)
        with contextlib.suppress(OSError):
            os.unlink(self.path(name))
        if pid is None:
            return False
        kill_pids([pid], groups=True)
        return True


def kill_pids(pids: Iterable[int], groups: bool = False, grace: float = 3.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL what is left."""
    targets = {p: start_time(p) for p in pids}
    targets = {p: st for p, st in targets.items() if st is not None}
    for pid in targets:
        with contextlib.suppress(OSError):
            if groups and os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if all(start_time(p) != st for p, st in targets.items()):
            return
        time.sleep(0.05)
    for pid, st in targets.items():
        if start_time(pid) == st:
            with contextlib.suppress(OSError):
                if groups and os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)


def netns_inode(name: str) -> int | None:
    try:
        return os.stat(f"/run/netns/{name}").st_ino
    except OSError:
        return None


def pids_in_netns(inode: int) -> list[int]:
    """Every process whose network namespace is the one with this inode."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino == inode:
                out.append(int(entry))
        except OSError:
            continue
    return out


def spawn(
    records: PidRecords,
    name: str,
    argv: Sequence[str],
    ns: str | None,
    log: str,
    env: dict[str, str] | None = None,
) -> int:
    """Start a long-running process in its own session (in namespace ``ns``), record its PID.

    ``ip netns exec`` execs the command without forking, so the PID is the daemon's own.
    Its stdin is /dev/null and its output goes to ``log``, so it holds none of our pipes open.
    """
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    with open(log, "ab") as lf:
        proc = subprocess.Popen(
            full,
            stdin=subprocess.DEVNULL,
            stdout=lf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    # record once the exec chain is done (ip -> target): the start time stays the same anyway
    records.record(name, proc.pid)
    # the child is reaped by init after we exit; keep Python from warning about it
    proc.returncode = 0
    return proc.pid
