"""Processes behind VMs and taps (psutil and /proc).

- The QEMU process of a libvirt domain: its command line carries ``-name guest=NAME,...``.
- The process behind a tap: a tap's file descriptor has an ``iff:\tvnet3`` line in
  ``/proc/PID/fdinfo/FD`` (the kernel's tun driver writes it), so the owner of each tap is found
  without asking libvirt. Only QEMU-like processes are scanned, to stay cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kvmtui.core.model import Problem


@dataclass(frozen=True, slots=True)
class ProcState:
    vm_pids: tuple[tuple[str, int], ...] = ()  # (domain name, QEMU pid)
    tap_pids: tuple[tuple[str, int], ...] = ()  # (tap name, pid holding it)
    problems: tuple[Problem, ...] = ()


def _guest_name(cmdline: list[str]) -> str | None:
    for i, arg in enumerate(cmdline):
        if arg == "-name" and i + 1 < len(cmdline):
            val = cmdline[i + 1]
            for part in val.split(","):
                if part.startswith("guest="):
                    return part[len("guest=") :]
            # plain "-name NAME"
            if "=" not in val.split(",")[0]:
                return val.split(",")[0]
    return None


def tap_names_of(pid: int) -> list[str]:
    """Tap names a process holds open (from its fdinfo ``iff:`` lines)."""
    base = f"/proc/{pid}/fdinfo"
    out: list[str] = []
    for fd in os.listdir(base):
        try:
            with open(f"{base}/{fd}") as f:
                for line in f:
                    if line.startswith("iff:"):
                        name = line[4:].strip()
                        if name and name not in out:
                            out.append(name)
        except OSError:
            continue
    return out


def _netns_inode(netns: str | None) -> int | None:
    from kvmtui.core.netns import netns_path

    try:
        return os.stat(netns_path(netns) if netns else "/proc/self/ns/net").st_ino
    except OSError:
        return None


def _in_netns(pid: int, inode: int | None) -> bool:
    """Is the process in the namespace (True when it cannot be told: not our process)."""
    if inode is None:
        return True
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == inode
    except PermissionError:
        return True
    except OSError:
        return False


def read_procs(netns: str | None = None) -> ProcState:
    """QEMU processes of network namespace ``netns`` (None: ours). Tap names and domain names
    are only unique within one host (namespace), so processes elsewhere are left out."""
    try:
        import psutil
    except ImportError:
        return ProcState(
            problems=(
                Problem("processes", "processes: psutil is not installed: pip install psutil"),
            )
        )
    vms: list[tuple[str, int]] = []
    taps: list[tuple[str, int]] = []
    denied = 0
    inode = _netns_inode(netns)
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            name = p.info.get("name") or ""
            cmd = p.info.get("cmdline") or []
            if not (name.startswith("qemu") or (cmd and "qemu" in os.path.basename(cmd[0]))):
                continue
            if not _in_netns(p.pid, inode):
                continue
            guest = _guest_name(cmd)
            if guest:
                vms.append((guest, p.pid))
            try:
                for tap in tap_names_of(p.pid):
                    taps.append((tap, p.pid))
            except PermissionError:
                denied += 1
        except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
            continue
    problems: tuple[Problem, ...] = ()
    if denied:
        problems = (
            Problem(
                "processes",
                f"processes: cannot read the open files of {denied} QEMU process(es) "
                "(permission denied): run as root to see which process owns each tap",
            ),
        )
    return ProcState(vm_pids=tuple(vms), tap_pids=tuple(taps), problems=problems)
