"""Helpers shared by the lab tests and conftest (a module of its own: ``conftest`` is ambiguous
when several test folders have one)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from typing import Any

from kvmtui.lab import spec


def kvmtui_cmd(*args: str) -> list[str]:
    """The kvmtui command line, run with this interpreter."""
    return [sys.executable, "-m", "kvmtui", *args]


def lab_cli(prefix: str, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        kvmtui_cmd("lab", "--prefix", prefix, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _ip_json(*args: str) -> Any:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


def root_snapshot() -> dict[str, Any]:
    """What the suite must not change in the root namespace (volatile fields left out)."""
    links = sorted(
        (
            link.get("ifindex"),
            link.get("ifname"),
            link.get("link_type"),
            link.get("address"),
            link.get("mtu"),
            link.get("master"),
            tuple(sorted(link.get("flags", []))),
        )
        for link in _ip_json("link", "show")
    )
    routes = sorted(
        json.dumps({k: v for k, v in r.items() if k not in ("expires",)}, sort_keys=True)
        for family in ("-4", "-6")
        for r in _ip_json(family, "route", "show", "table", "all")
    )
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read().strip()
    return {"links": links, "routes": routes, "nft": nft, "ip_forward": forward}


def root_differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable differences between two root snapshots (empty: identical)."""
    diffs = []
    for key in ("links", "routes"):
        gone = [x for x in before[key] if x not in after[key]]
        new = [x for x in after[key] if x not in before[key]]
        diffs += [f"{key}: removed {x}" for x in gone] + [f"{key}: added {x}" for x in new]
    if before["nft"] != after["nft"]:
        diffs.append("nft ruleset changed")
    if before["ip_forward"] != after["ip_forward"]:
        diffs.append(f"ip_forward {before['ip_forward']} -> {after['ip_forward']}")
    return diffs


def lab_inodes(prefix: str) -> set[int]:
    """The inodes of the lab's namespaces now (a process can outlive its namespace's name)."""
    out = set()
    for name in os.listdir("/run/netns"):
        if name.startswith(prefix):
            with contextlib.suppress(OSError):
                out.add(os.stat(f"/run/netns/{name}").st_ino)
    return out


NOTHING: dict[str, object] = {"namespaces": [], "processes": [], "folder": False}


def lab_traces(prefix: str, inodes: set[int] | None = None) -> dict[str, object]:
    """Everything of a lab that could be left behind: namespaces, processes, files.

    A process counts when its command line names the lab's folder or one of its namespaces,
    or when it runs in one of ``inodes`` (the lab's namespaces, taken before ``down``).
    """
    names = sorted(n for n in os.listdir("/run/netns") if n.startswith(prefix))
    state = spec.state_dir(prefix)
    ns_names = [spec.ns_name(prefix, s) for s in (spec.NS_INET, spec.NS_HOST, spec.NS_LAN)]
    ns_names += [spec.ns_name(prefix, vm.name) for vm in spec.LIGHT_VMS]
    procs = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            ino = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            continue
        if state in cmd or any(n in cmd.split() for n in ns_names) or ino in (inodes or ()):
            procs.append(f"{pid} {cmd}")
    return {"namespaces": names, "processes": procs, "folder": os.path.exists(state)}
