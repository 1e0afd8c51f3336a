"""IP truth for bridged VMs: ``inventory --listen`` keeps a bridged VM's IP when the host's
neighbour entry is gone, from the ARP the VM keeps sending (tests/capture/topo.py topology)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "capture"))

import topo as T
from topo import Topo

from kvmtui.core.wire import parse

P = os.environ.get("KVMTUI_TRACER_PREFIX", "kvd2a-")[:-2] + "l-"


@pytest.fixture(scope="module")
def topo() -> Iterator[Topo]:
    if os.geteuid() != 0:
        pytest.fail("these tests need root (namespaces, AF_PACKET)")
    t = Topo(P)
    try:
        yield t.up()
    finally:
        t.down()


def inventory(topo: Topo, *args: str) -> Any:
    r = subprocess.run(
        ["ip", "netns", "exec", topo.host, sys.executable, "-m", "kvmtui", "inventory", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r.stdout


def br_nic(doc: Any) -> Any:
    vm = next(v for v in doc["vms"] if v["name"] == f"{P}vb")
    return next(n for n in vm["nics"] if n["mac"] == T.BR_VM.mac)


def test_listen_keeps_the_ip_after_the_neighbour_entry_is_flushed(topo: Topo) -> None:
    stop = threading.Event()

    def talk() -> None:  # the guest keeps talking to its LAN; its ARP cache expires now and then
        while not stop.is_set():
            T.nsx(topo.ns(T.BR_VM), "ip", "neigh", "flush", "dev", "eth0", check=False)
            topo.ping(T.BR_VM, "10.0.0.1", count=2)

    topo.ping(T.BR_VM, "10.0.0.2", count=1)  # the host learns the VM's IP...
    T.nsx(topo.host, "ip", "neigh", "flush", "dev", "br0")  # ...and forgets it
    assert br_nic(json.loads(inventory(topo, "--json")))["ip"] is None
    t = threading.Thread(target=talk, daemon=True)
    t.start()
    try:
        doc = json.loads(inventory(topo, "--json", "--listen", "3"))
        text = inventory(topo, "--listen", "3")
    finally:
        stop.set()
        t.join(20)
    nic = br_nic(doc)
    assert nic["ip"] == T.BR_VM.ip and nic["ip_source"] == "wire", nic
    assert doc["taken_at"] - 5 <= nic["ip_seen_at"] <= doc["taken_at"]
    assert f"{T.BR_VM.ip} (seen on the wire " in text and " s ago)" in text, text


def test_parse_reads_arp_sender_and_dhcp_ack() -> None:
    # an ARP probe (sender 0.0.0.0) proves nothing; a who-has names its sender
    eth = bytes.fromhex("ffffffffffff525400ee00020806")
    arp = bytes.fromhex("0001080006040001525400ee00020a0000320000000000000a000001")
    assert parse(eth + arp) == ("52:54:00:ee:00:02", "10.0.0.50", "arp")
    probe = arp[:14] + bytes(4) + arp[18:]
    assert parse(eth + probe) is None


LIVE = """
import sys, threading, time
from kvmtui.core.live import LiveHost
mac, ip = sys.argv[1], sys.argv[2]
stop = threading.Event()
def seen(snap):
    for v in snap.vms:
        for n in v.nics:
            if n.mac == mac and n.ip == ip and n.ip_source == "wire":
                print("wire", n.ip_seen_at is not None, flush=True)
                stop.set()
tm = threading.Timer(40, stop.set)
tm.daemon = True
tm.start()
LiveHost().watch(seen, stop)
"""


def test_live_host_fills_the_ip_from_the_wire(topo: Topo) -> None:
    stop = threading.Event()

    def talk() -> None:  # ARP from the guest; the host's neighbour entry keeps being flushed
        while not stop.is_set():
            T.nsx(topo.ns(T.BR_VM), "ip", "neigh", "flush", "dev", "eth0", check=False)
            topo.ping(T.BR_VM, "10.0.0.2", count=1)
            T.nsx(topo.host, "ip", "neigh", "flush", "dev", "br0", check=False)

    t = threading.Thread(target=talk, daemon=True)
    t.start()
    try:
        r = subprocess.run(
            ["ip", "netns", "exec", topo.host, sys.executable, "-c", LIVE, T.BR_VM.mac,
             T.BR_VM.ip],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        stop.set()
        t.join(20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:1] == ["wire True"], r.stdout + r.stderr
