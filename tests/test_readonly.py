"""kvmtui only reads: the lab host's links, routes, nft ruleset, ip_forward and libvirt's XML
definitions are identical before and after a full inventory (library and CLI) and a watch
session. The reference dumps use iproute2/nft JSON and text (allowed in tests)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from kvmtui.core.live import LiveHost
from kvmtui.core.model import HostSnapshot
from kvmtui.core.snapshot import read_host
from kvmtui.lab.handle import LabHandle

pytestmark = pytest.mark.lab


def _j(lab: LabHandle, *args: str) -> Any:
    cp = lab.run(lab.host_ns, "ip", "-j", *args, check=True)
    return json.loads(cp.stdout or "[]")


def host_state(lab: LabHandle) -> dict[str, Any]:
    import libvirt

    links = sorted(
        (
            lk["ifname"],
            lk.get("link_type"),
            lk.get("address"),
            lk.get("mtu"),
            lk.get("master"),
            tuple(sorted(lk.get("flags", []))),
        )
        for lk in _j(lab, "link", "show")
    )
    routes = sorted(json.dumps(r, sort_keys=True) for r in _j(lab, "route", "show", "table", "all"))
    nft = lab.run(lab.host_ns, "nft", "list", "ruleset", check=True).stdout
    nft = re.sub(r"counter packets \d+ bytes \d+", "counter", nft)
    fwd = lab.run(lab.host_ns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout
    conn = libvirt.openReadOnly(lab.uri)
    try:
        xml = sorted(n.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) for n in conn.listAllNetworks())
        xml += sorted(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) for d in conn.listAllDomains())
        active = sorted((n.name(), n.isActive()) for n in conn.listAllNetworks())
        active += sorted((d.name(), d.state()[0]) for d in conn.listAllDomains())
    finally:
        conn.close()
    return {
        "links": links,
        "routes": routes,
        "nft": nft,
        "ip_forward": fwd,
        "xml": xml,
        "active": active,
    }


def test_inventory_and_watch_change_nothing(lab: LabHandle) -> None:
    before = host_state(lab)
    snap = read_host(uri=lab.uri, netns=lab.host_ns)
    assert snap.bridges and snap.networks
    cp = subprocess.run(
        [sys.executable, "-m", "kvmtui", "lab", "--prefix", lab.prefix, "exec", "--",
         sys.executable, "-m", "kvmtui", "inventory", "--json"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 0 and json.loads(cp.stdout)["bridges"]
    host = LiveHost(uri=lab.uri, netns=lab.host_ns)
    got: list[HostSnapshot] = []
    stop = threading.Event()
    t = threading.Thread(target=host.watch, args=(got.append, stop), daemon=True)
    t.start()
    time.sleep(2.0)  # guests ping every few seconds: FDB/neighbour events arrive meanwhile
    host.counters()
    host.snapshot()
    stop.set()
    t.join(5)
    assert not t.is_alive() and got
    after = host_state(lab)
    for key in before:
        assert before[key] == after[key], f"{key} changed"
