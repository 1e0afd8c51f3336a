"""``kvmtui trace`` / ``kvmtui dhcp`` as a user runs them, inside the topology's host namespace.

The VM is resolved by the real host model (``read_host``): without libvirt, the bridged VM is a
namespace guest named after its namespace, its path tap -> br0 -> ens9.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import topo as T
from topo import Topo

VB = "{p}vb"


def kvmtui(
    topo: Topo, *args: str, timeout: float = 60, as_nobody: bool = False
) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", topo.host]
    if as_nobody:
        cmd += ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    cmd += [sys.executable, "-m", "kvmtui", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def later(delay: float, fn: object) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        fn()  # type: ignore[operator]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_trace_json_and_pcapng(topo: Topo, tmp_path: object) -> None:
    vm = VB.format(p=topo.p)
    pcap = f"{tmp_path}/trace.pcapng"
    t = later(2.5, lambda: topo.ping(T.BR_VM, "10.0.0.1", count=2))
    r = kvmtui(topo, "trace", vm, "--json", "--count", "4", "--timeout", "20",
               "--filter", "icmp", "--pcap", pcap)  # fmt: skip
    t.join()
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert row["proto"] == "icmp" and row["nat"] is None
        assert {"src", "dst", "hops", "proto", "nat"} <= set(row)
        devs = [h["dev"] for h in row["hops"]]
        if row["direction"] == "out":
            assert devs == ["vnet1", "br0", "ens9"] and row["src"] == T.BR_VM.ip
        else:
            assert devs == ["ens9", "br0", "vnet1"] and row["dst"] == T.BR_VM.ip
        assert all(isinstance(h["time"], float) for h in row["hops"])
    assert "kernel counters" in r.stderr
    # tshark reads the pcapng back: one interface per hop, each packet under its hop
    out = subprocess.run(
        ["tshark", "-r", pcap, "-T", "fields", "-e", "frame.interface_name", "-e", "ip.src",
         "-e", "frame.comment", "-e", "frame.packet_flags_direction"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert len(out) == 12
    ifaces = [line.split("\t")[0] for line in out]
    assert set(ifaces) == {"vnet1", "br0", "ens9"}
    assert all("row " in line for line in out)
    # epb_flags: an outgoing request leaves through ens9 (2 = outbound), enters at vnet1 (1)
    for line in out:
        dev, src, _comment, direction = line.split("\t")
        if src == T.BR_VM.ip and dev in ("vnet1", "ens9"):
            assert direction == ("0x00000002" if dev == "ens9" else "0x00000001"), line


def test_trace_bad_filter_exits_2(topo: Topo) -> None:
    r = kvmtui(topo, "trace", VB.format(p=topo.p), "--filter", "icmp and and", "--timeout", "2")
    assert r.returncode == 2
    assert "bad filter" in r.stderr and "syntax error" in r.stderr
    assert "Traceback" not in r.stderr


def test_trace_unknown_vm_exits_2(topo: Topo) -> None:
    r = kvmtui(topo, "trace", "no-such-vm", "--timeout", "2")
    assert r.returncode == 2 and "no VM, tap or MAC 'no-such-vm'" in r.stderr
    assert VB.format(p=topo.p) in r.stderr  # the known VMs are listed


def test_trace_without_privileges_says_so(topo: Topo) -> None:
    r = kvmtui(topo, "trace", VB.format(p=topo.p), "--timeout", "2", as_nobody=True)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "root" in r.stderr, r.stderr


def test_dhcp_bridged_vm_names_the_lan_server(topo: Topo) -> None:
    topo.dnsmasq(topo.lan, "eth0", ("10.0.0.100", "10.0.0.200"), "10.0.0.1")
    t = later(2.5, lambda: topo.udhcpc(T.BR_VM))
    r = kvmtui(topo, "dhcp", VB.format(p=topo.p), "--json", "--timeout", "25")
    t.join()
    assert r.returncode == 0, r.stderr
    tx = json.loads(r.stdout)
    assert [m["type"] for m in tx["messages"]] == ["discover", "offer", "request", "ack"]
    assert tx["client"] == T.BR_VM.mac
    assert tx["server"] == {"ip": "10.0.0.1", "mac": T.LAN_MAC, "dev": "ens9", "role": "lan",
                            "name": "the LAN's DHCP server behind ens9"}  # fmt: skip
    assert tx["offered_ip"].startswith("10.0.0.")
    assert tx["lease_check"]["status"] == "none"  # a LAN lease is not libvirt's


def test_dhcp_timeout_is_a_clear_message(topo: Topo) -> None:
    r = kvmtui(topo, "dhcp", VB.format(p=topo.p), "--timeout", "1.5")
    assert r.returncode == 1
    assert "no DHCP exchange" in r.stderr and "Traceback" not in r.stderr


def test_sigterm_mid_trace_leaves_a_valid_pcapng(topo: Topo, tmp_path: object) -> None:
    """The old trace wrote its file only at a normal end: SIGTERM (or Ctrl-C, or an SSH drop)
    left nothing. Now the frames are streamed: killed mid-capture, tshark reads what was seen."""
    vm = VB.format(p=topo.p)
    pcap = f"{tmp_path}/killed.pcapng"
    cmd = ["ip", "netns", "exec", topo.host, sys.executable, "-m", "kvmtui", "trace", vm,
           "--count", "100000", "--timeout", "60", "--filter", "icmp", "--pcap", pcap]  # fmt: skip
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # the capture is up
        topo.ping(T.BR_VM, "10.0.0.1", count=3)
        time.sleep(1.5)  # at least one flush (once a second)
        p.send_signal(15)
        _out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert "stopped by SIGTERM" in err and "Traceback" not in err, err
    wrote = next(ln for ln in err.splitlines() if "wrote" in ln)
    n = int(wrote.split("wrote ")[1].split()[0])
    assert n >= 6 * 2, err  # 3 echo requests and 3 replies, each seen on vnet1 and br0 at least
    r = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.interface_name",
                        "-e", "icmp.type"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln.split("\t") for ln in r.stdout.splitlines()]
    assert len(lines) == n
    assert {"vnet1", "br0"} <= {ln[0] for ln in lines}
    assert {"0", "8"} <= {ln[1] for ln in lines}
