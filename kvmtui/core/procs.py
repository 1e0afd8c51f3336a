"""Processes behind VMs and taps (psutil and /proc).

- The QEMU process of a libvirt domain: its command line carries ``-name guest=NAME,...``.
- The process behind a tap: a tap's file descriptor has an ``iff:\tvnet3`` line in
  ``/proc/PID/fdinfo/FD`` (the kernel's tun driver writes it), so the owner of each tap is found
  without asking libvirt. Only QEMU-like processes are scanned, to stay cheap.
- The NICs a QEMU process was started with, from its command line (``-netdev``/``-device``
  pairs in key=value or JSON form, ``-nic``): a VM no libvirt knows (Proxmox's qemu-server
  starts ``/usr/bin/kvm -id 100 -name web -netdev type=tap,id=net0,ifname=tap100i0 -device
  virtio-net-pci,mac=...,netdev=net0``) is still a VM with its MACs and taps.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass

from kvmtui.core.model import Problem


def pid_alive(pid: int) -> bool:
    """Is there a process ``pid`` (one of another user's counts: it is there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class QemuNic:
    mac: str  # lower case
    tap: str | None = None  # ifname= of its tap netdev (None: an fd handed over, as libvirt does)
    model: str | None = None  # the -device driver (virtio-net-pci, e1000, ...)


@dataclass(frozen=True, slots=True)
class QemuProc:
    """A QEMU process: its ``-name``, ``-id`` (Proxmox's VMID) and NICs."""

    name: str
    pid: int
    vmid: int | None = None
    nics: tuple[QemuNic, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcState:
    vm_pids: tuple[tuple[str, int], ...] = ()  # (domain name, QEMU pid)
    tap_pids: tuple[tuple[str, int], ...] = ()  # (tap name, pid holding it)
    problems: tuple[Problem, ...] = ()
    qemu: tuple[QemuProc, ...] = ()  # every QEMU process with a name, libvirt's included


def _opts(arg: str) -> tuple[str | None, dict[str, str]]:
    """A QEMU option value: JSON (``{"driver": ...}``, libvirt >= 7) or ``type,key=value,...``
    (the first bare word is the type or driver)."""
    if arg.startswith("{"):
        try:
            obj = json.loads(arg)
        except ValueError:
            return None, {}
        if not isinstance(obj, dict):
            return None, {}
        kv = {str(k): str(v) for k, v in obj.items()}
        return kv.get("driver") or kv.get("type"), kv
    head: str | None = None
    kv = {}
    for i, part in enumerate(arg.split(",")):
        k, eq, v = part.partition("=")
        if not eq:
            if i == 0:
                head = k
            continue
        kv[k] = v
    return kv.get("driver") or kv.get("type") or head, kv


def qemu_nics(cmdline: list[str]) -> tuple[QemuNic, ...]:
    """The NICs of a QEMU command line: each ``-device`` with a ``mac`` and a ``netdev`` joined
    to its ``-netdev`` (for the tap's ``ifname``), and each ``-nic``."""
    netdevs: dict[str, dict[str, str]] = {}
    devices: list[tuple[str | None, dict[str, str]]] = []
    nics: list[QemuNic] = []
    for opt, val in itertools.pairwise(cmdline):
        if opt == "-netdev":
            kind, kv = _opts(val)
            if "id" in kv:
                netdevs[kv["id"]] = {"type": kind or "", **kv}
        elif opt == "-device":
            devices.append(_opts(val))
        elif opt == "-nic":
            kind, kv = _opts(val)
            mac = kv.get("mac")
            if mac:
                tap = kv.get("ifname") if kind == "tap" else None
                nics.append(QemuNic(mac.lower(), tap, kv.get("model")))
    for driver, kv in devices:
        mac, nd = kv.get("mac"), netdevs.get(kv.get("netdev", ""))
        if not mac or nd is None:
            continue
        tap = nd.get("ifname") if nd.get("type") == "tap" else None
        nics.append(QemuNic(mac.lower(), tap, driver))
    return tuple(nics)


def _vmid(cmdline: list[str]) -> int | None:
    for opt, val in itertools.pairwise(cmdline):
        if opt == "-id" and val.isdigit():
            return int(val)
    return None


def _is_qemu(name: str, cmd: list[str]) -> bool:
    """qemu-system-*, qemu-kvm, and Proxmox's ``/usr/bin/kvm``."""
    base = os.path.basename(cmd[0]) if cmd else ""
    return name.startswith("qemu") or "qemu" in base or "kvm" in (name, base)


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
    procs: list[QemuProc] = []
    denied = 0
    inode = _netns_inode(netns)
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            name = p.info.get("name") or ""
            cmd = p.info.get("cmdline") or []
            if not _is_qemu(name, cmd):
                continue
            if not _in_netns(p.pid, inode):
                continue
            guest = _guest_name(cmd)
            if guest:
                vms.append((guest, p.pid))
                procs.append(QemuProc(guest, p.pid, _vmid(cmd), qemu_nics(cmd)))
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
    return ProcState(vm_pids=tuple(vms), tap_pids=tuple(taps), problems=problems, qemu=tuple(procs))
