"""``watch_paths`` on the capture tests' topology, broken the way an admin would break a host.

Each case runs the watch where kvmtui runs (inside the topology's host namespace, reading the
host there) while the VM keeps talking, and checks the top finding's code and hop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "capture"))

import topo as T
from topo import Topo

P = os.environ.get("KVMTUI_TRACER_PREFIX", "kvd2a-")[:-2] + "w-"

SCRIPT = """
import json, sys
from kvmtui.commands.capture import _read_host, select_path
from kvmtui.doctor.model import ranked
from kvmtui.doctor.watch import watch_paths
snap = _read_host(None)
path, why = select_path(snap, sys.argv[1])
assert path is not None, why
res = watch_paths(snap, [path], float(sys.argv[2]))
print(json.dumps({"findings": [f.as_json() for f in ranked(res.for_mac(path.mac))],
                  "notes": list(res.notes)}))
"""


@pytest.fixture(scope="module")
def topo() -> Iterator[Topo]:
    if os.geteuid() != 0:
        pytest.fail("these tests need root (namespaces, tracefs)")
    t = Topo(P)
    try:
        yield t.up()
    finally:
        t.down()


def watch(topo: Topo, vm: T.TVm, traffic: Callable[[], object], secs: float = 4) -> Any:
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            traffic()

    cmd = ["ip", "netns", "exec", topo.host, sys.executable, "-c", SCRIPT, topo.ns(vm), str(secs)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        out, err = p.communicate(timeout=90)
    finally:
        stop.set()
    t.join(30)
    assert p.returncode == 0, err
    return json.loads(out)


def codes(res: Any) -> list[str]:
    return [f["code"] for f in res["findings"]]


def test_healthy_bridged_path_has_no_error(topo: Topo) -> None:
    res = watch(topo, T.BR_VM, lambda: topo.ping(T.BR_VM, "10.0.0.1", count=2))
    assert [f for f in res["findings"] if f["severity"] == "error"] == [], res


def test_firewall_drop_is_the_top_finding(topo: Topo) -> None:
    rule = ["-s", "192.168.122.0/24", "-j", "DROP"]
    T.nsx(topo.host, "iptables", "-I", "FORWARD", "1", *rule)
    try:
        res = watch(topo, T.NAT_VM, lambda: topo.ping(T.NAT_VM, T.INET_IP, count=2))
    finally:
        T.nsx(topo.host, "iptables", "-D", "FORWARD", *rule, check=False)
    top = res["findings"][0]
    assert top["code"] == "drop.netfilter_drop" and top["hop"] == "virbr0", res
    assert any("nft_do_chain" in e for e in top["evidence"])


def test_disabled_bridge_port_is_named_by_the_kernel(topo: Topo) -> None:
    T.nsx(topo.host, "bridge", "link", "set", "dev", T.BR_VM.tap, "state", "0")
    try:

        def talk() -> None:  # the guest forgets its gateway's MAC and asks again
            T.nsx(topo.ns(T.BR_VM), "ip", "neigh", "flush", "dev", "eth0", check=False)
            topo.ping(T.BR_VM, "10.0.0.1", count=2)

        res = watch(topo, T.BR_VM, talk)
    finally:
        T.nsx(topo.host, "bridge", "link", "set", "dev", T.BR_VM.tap, "state", "3")
    top = res["findings"][0]
    assert top["code"] == "drop.bridge_ingress_stp_state", res
    assert top["hop"] == T.BR_VM.tap
    assert "watch.arp_unanswered" in codes(res)


def test_dhcp_discover_without_offer(topo: Topo) -> None:
    # no DHCP server on br0's LAN in this topology: the guest's client asks in vain
    res = watch(topo, T.BR_VM, lambda: topo.udhcpc(T.BR_VM, timeout=30), secs=6)
    assert "watch.dhcp_no_offer" in codes(res), res
