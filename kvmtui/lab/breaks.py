"""``kvmtui lab break SCENARIO [VM]`` / ``kvmtui lab fix``: break the lab as an admin would.

Each scenario is a row of :data:`SCENARIOS`: the commands an admin would type (sysctl, ip,
bridge, iptables, kill) run inside the lab's namespaces, the commands that undo them, and what
the doctor should name first (the test matrix asserts it; kvmtui is never told). The undo
commands of every applied break are written to the lab's folder before the break runs, so
``lab fix`` undoes them in reverse order, even from another shell. Nothing outside the lab's
namespaces is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kvmtui.lab import spec
from kvmtui.lab.procs import LabError, run

# where a command runs: "host", "lan", or a light VM's name (its namespace)
Step = tuple[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    vm: str  # the lab VM (short name) it breaks
    what: str  # one line: what an admin did
    expect_code: str  # the doctor's top finding
    expect_hop: str | None
    steps: tuple[Step, ...]
    undo: tuple[Step, ...]
    prepare: Callable[[str], tuple[tuple[Step, ...], tuple[Step, ...]]] | None = None


def _h(*cmd: str) -> Step:
    return ("host", cmd)


def _dnsmasq_kill(prefix: str) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """Kill the default network's dnsmasq (and its script helper); the undo restarts it with its
    own command line and environment in libvirtd's mount and network namespaces (its conf file
    lives in libvirtd's private view; libvirt's lease helper needs libvirt's variables)."""
    import psutil

    host_ns = os.stat(f"/run/netns/{spec.ns_name(prefix, spec.NS_HOST)}").st_ino
    pids: list[int] = []
    cmd: list[str] = []
    env: list[str] = []
    libvirtd = None
    for p in psutil.process_iter(["pid", "name", "cmdline", "ppid"]):
        try:
            if os.stat(f"/proc/{p.pid}/ns/net").st_ino != host_ns:
                continue
        except OSError:
            continue
        argv = p.info.get("cmdline") or []
        if p.info.get("name") == "dnsmasq" and any(a.endswith("/default.conf") for a in argv):
            pids.append(p.pid)
            if not cmd or p.info.get("ppid") == 1:
                cmd = list(argv)
                with open(f"/proc/{p.pid}/environ", "rb") as f:
                    env = [v.decode() for v in f.read().split(b"\0") if v]
        if p.info.get("name") == "libvirtd":
            libvirtd = p.pid
    if not pids or libvirtd is None:
        raise LabError("the default network's dnsmasq (or libvirtd) is not running in the lab")
    return (
        tuple(("root", ("kill", str(pid))) for pid in pids),
        (("root", ("nsenter", "-t", str(libvirtd), "-m", "-n", "--", "env", "-i", *env, *cmd)),),
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ip-forward-off", "nat-light", "sysctl -w net.ipv4.ip_forward=0 on the host",
             "nat.ip_forward_off", None,
             (_h("sysctl", "-qw", "net.ipv4.ip_forward=0"),),
             (_h("sysctl", "-qw", "net.ipv4.ip_forward=1"),)),
    Scenario("tap-down", "nat-light", "ip link set vnet0 down", "tap.down", "vnet0",
             (_h("ip", "link", "set", "vnet0", "down"),),
             (_h("ip", "link", "set", "vnet0", "up"),)),
    Scenario("tap-off-bridge", "nat-light", "ip link set vnet0 nomaster", "tap.no_bridge", "vnet0",
             (_h("ip", "link", "set", "vnet0", "nomaster"),),
             (_h("ip", "link", "set", "vnet0", "master", spec.NAT_BRIDGE),)),
    Scenario("tap-wrong-bridge", "nat-light", "ip link set vnet0 master virbr1",
             "tap.wrong_bridge", "vnet0",
             (_h("ip", "link", "set", "vnet0", "master", spec.ISO_BRIDGE),),
             (_h("ip", "link", "set", "vnet0", "master", spec.NAT_BRIDGE),)),
    Scenario("bridge-down", "iso-a", "ip link set virbr1 down", "bridge.down", spec.ISO_BRIDGE,
             (_h("ip", "link", "set", spec.ISO_BRIDGE, "down"),),
             (_h("ip", "link", "set", spec.ISO_BRIDGE, "up"),)),
    Scenario("port-disabled", "br-light", "bridge link set dev vnet1 state 0 (disabled)",
             "port.not_forwarding", "vnet1",
             (_h("bridge", "link", "set", "dev", "vnet1", "state", "0"),),
             (_h("bridge", "link", "set", "dev", "vnet1", "state", "3"),)),
    Scenario("uplink-no-carrier", "br-light", "the LAN side of ens9 unplugged (peer down)",
             "uplink.no_carrier", spec.BR_NIC,
             (("lan", ("ip", "link", "set", spec.LAN_DEV, "down")),),
             (("lan", ("ip", "link", "set", spec.LAN_DEV, "up")),)),
    Scenario("uplink-removed", "br-light", "ip link set ens9 nomaster", "uplink.missing",
             spec.BR_BRIDGE,
             (_h("ip", "link", "set", spec.BR_NIC, "nomaster"),),
             (_h("ip", "link", "set", spec.BR_NIC, "master", spec.BR_BRIDGE),)),
    Scenario("dnsmasq-killed", "nat-light", "kill the default network's dnsmasq",
             "dhcp.dnsmasq_down", spec.NAT_BRIDGE, (), (), prepare=_dnsmasq_kill),
    Scenario("dhcp-blocked", "nat-light", "iptables -I INPUT -i virbr0 -p udp --dport 67 -j DROP",
             "firewall.dhcp_blocked", spec.NAT_BRIDGE,
             (_h("iptables", "-w", "-I", "INPUT", "1", "-i", spec.NAT_BRIDGE, "-p", "udp",
                 "--dport", "67", "-j", "DROP"),),
             (_h("iptables", "-w", "-D", "INPUT", "-i", spec.NAT_BRIDGE, "-p", "udp",
                 "--dport", "67", "-j", "DROP"),)),
    Scenario("no-default-route", "nat-light", "ip route del default", "nat.no_default_route",
             None,
             (_h("ip", "route", "del", "default"),),
             (_h("ip", "route", "replace", "default", "via", spec.INTERNET_IP, "dev",
                 spec.UPLINK),)),
    Scenario("masquerade-removed", "nat-light", "iptables -t nat -F LIBVIRT_PRT",
             "nat.masquerade_missing", None,
             (_h("sh", "-c", "iptables-save -t nat > \"$KVMTUI_BREAK_DIR/nat.rules\" && "
                 "iptables -w -t nat -F LIBVIRT_PRT"),),
             (_h("sh", "-c", "iptables-restore -w -T nat < \"$KVMTUI_BREAK_DIR/nat.rules\""),)),
    Scenario("forward-drop", "nat-light", "iptables -I FORWARD 1 -s 192.168.122.0/24 -j DROP",
             "firewall.forward_drop", spec.NAT_BRIDGE,
             (_h("iptables", "-w", "-I", "FORWARD", "1", "-s", spec.NAT_SUBNET, "-j", "DROP"),),
             (_h("iptables", "-w", "-D", "FORWARD", "-s", spec.NAT_SUBNET, "-j", "DROP"),)),
    Scenario("docker-forward-policy", "br-light",
             "iptables -P FORWARD DROP (what Docker does), br_netfilter on",
             "firewall.bridged_dropped", spec.BR_BRIDGE,
             (_h("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"),
              _h("iptables", "-w", "-P", "FORWARD", "DROP")),
             (_h("iptables", "-w", "-P", "FORWARD", "ACCEPT"),)),
    Scenario("mac-clash", "iso-a", "iso-b's eth0 given iso-a's MAC", "mac.clash", "vnet2",
             (("iso-b", ("ip", "link", "set", "eth0", "address", "52:54:00:aa:01:03")),),
             (("iso-b", ("ip", "link", "set", "eth0", "address", "52:54:00:aa:01:04")),)),
    Scenario("guest-link-down", "nat-light", "ip link set eth0 down inside the guest",
             "guest.link_down", "vnet0",
             (("nat-light", ("ip", "link", "set", "eth0", "down")),),
             (("nat-light", ("ip", "link", "set", "eth0", "up")),
              ("nat-light", ("ip", "route", "replace", "default", "via", spec.NAT_GATEWAY)))),
    Scenario("mtu-mismatch", "br-light", "ip link set ens9 mtu 1400", "mtu.mismatch",
             spec.BR_NIC,
             (_h("ip", "link", "set", spec.BR_NIC, "mtu", "1400"),),
             (_h("ip", "link", "set", spec.BR_NIC, "mtu", "1500"),)),
)  # fmt: skip


def scenario(name: str) -> Scenario:
    for s in SCENARIOS:
        if s.name == name:
            return s
    known = ", ".join(s.name for s in SCENARIOS)
    raise KeyError(f"no scenario {name[:40]!r} (known: {known})")


def _ns(prefix: str, where: str) -> str | None:
    if where == "root":
        return None
    if where == "host":
        return spec.ns_name(prefix, spec.NS_HOST)
    if where == "lan":
        return spec.ns_name(prefix, spec.NS_LAN)
    return spec.ns_name(prefix, spec.lab_vm(where).name)


def _folder(prefix: str) -> str:
    path = os.path.join(spec.state_dir(prefix), "breaks")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _ledger(prefix: str) -> str:
    return os.path.join(_folder(prefix), "applied.json")


def _read_ledger(prefix: str) -> list[dict[str, object]]:
    try:
        with open(_ledger(prefix)) as f:
            data = json.load(f)
        return list(data) if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def _write_ledger(prefix: str, entries: list[dict[str, object]]) -> None:
    tmp = _ledger(prefix) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(entries, f)
    os.replace(tmp, _ledger(prefix))


def _run_steps(prefix: str, steps: Sequence[Any]) -> None:
    os.environ["KVMTUI_BREAK_DIR"] = _folder(prefix)
    for where, cmd in steps:
        argv = [str(c) for c in cmd]
        if str(where) == "root" and argv and argv[0] == "kill":
            os.kill(int(argv[1]), signal.SIGTERM)
            continue
        run(*argv, ns=_ns(prefix, str(where)), timeout=20)


def _lab_up(prefix: str) -> None:
    if not os.path.exists(f"/run/netns/{spec.ns_name(prefix, spec.NS_HOST)}"):
        raise LabError(f"the lab {prefix} is not up (kvmtui lab --prefix {prefix} up)")


def apply(prefix: str, name: str) -> Scenario:
    """Break the lab by scenario ``name`` (its undo is recorded first)."""
    _lab_up(prefix)
    sc = scenario(name)
    steps, undo = sc.steps, sc.undo
    if sc.prepare is not None:
        steps, undo = sc.prepare(prefix)
    entries = _read_ledger(prefix)
    if any(e.get("name") == sc.name for e in entries):
        return sc  # already broken that way
    entries.append({"name": sc.name, "undo": [[w, list(c)] for w, c in undo]})
    _write_ledger(prefix, entries)
    _run_steps(prefix, steps)
    return sc


def _wait_forwarding(prefix: str, timeout: float = 15.0) -> None:
    """After a port flap, STP walks listening -> learning -> forwarding: wait for it."""
    host = spec.ns_name(prefix, spec.NS_HOST)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = run("sh", "-c", "cat /sys/class/net/*/brport/state", ns=host, check=False)
        if all(s.strip() == "3" for s in states.split()):
            return
        time.sleep(0.2)


def fix(prefix: str) -> list[str]:
    """Undo every applied break, newest first; returns their names."""
    _lab_up(prefix)
    entries = _read_ledger(prefix)
    done = []
    errors = []
    for e in reversed(entries):
        try:
            undo = e.get("undo") or []
            assert isinstance(undo, list)
            _run_steps(prefix, undo)
            done.append(str(e.get("name")))
        except LabError as exc:
            errors.append(f"{e.get('name')}: {exc}")
    _write_ledger(prefix, [])
    _wait_forwarding(prefix)
    if errors:
        raise LabError("could not undo everything: " + "; ".join(errors))
    return done


def run_break(prefix: str, args: argparse.Namespace) -> int:
    if getattr(args, "list", False) or not getattr(args, "scenario", None):
        print(f"{'scenario':<22} {'VM':<10} what an admin did -> what kvmtui doctor names first")
        for s in SCENARIOS:
            print(f"{s.name:<22} {s.vm:<10} {s.what} -> {s.expect_code}")
        print("\nkvmtui lab break SCENARIO, then kvmtui doctor VM; kvmtui lab fix undoes it.")
        return 0
    try:
        sc = scenario(str(args.scenario))
    except KeyError as exc:
        print(f"kvmtui lab: {exc.args[0]}", file=sys.stderr)
        return 2
    if getattr(args, "vm", None) and str(args.vm) not in (sc.vm, spec.ns_name(prefix, sc.vm)):
        print(f"kvmtui lab: scenario {sc.name} breaks {sc.vm}, not {str(args.vm)[:40]}",
              file=sys.stderr)  # fmt: skip
        return 2
    apply(prefix, sc.name)
    print(f"lab {prefix}: broke {sc.vm}: {sc.what}")
    print(f"  ask: kvmtui lab --prefix {prefix} exec -- kvmtui doctor {sc.vm}")
    print(f"  undo: kvmtui lab --prefix {prefix} fix")
    return 0


def run_fix(prefix: str, args: argparse.Namespace) -> int:
    del args
    done = fix(prefix)
    print(f"lab {prefix}: " + (f"undid {', '.join(done)}" if done else "nothing was broken"))
    return 0
