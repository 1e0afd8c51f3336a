"""``diagnose`` shares one set of tables (FDB by MAC, port MTUs by bridge) between the NICs of
a host; each check finds the same as when it scans the snapshot itself, also where the MAC and
MTU checks fire: a VM's MAC learned on another port, a MAC never learned, an MTU mismatch."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from kvmtui.core.jsondecode import decode_snapshot
from kvmtui.core.model import FdbEntry, HostSnapshot, MacOwner
from kvmtui.doctor.engine import diagnose, diagnose_nic
from kvmtui.doctor.facts import HostFacts
from kvmtui.doctor.fwsim import Ruleset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FACTS = HostFacts(ruleset=Ruleset(), bridge_nf_call_iptables=None)


def load(name: str) -> HostSnapshot:
    with open(FIXTURES / f"{name}.json") as f:
        return decode_snapshot(json.load(f))


def codes(s: HostSnapshot) -> set[str]:
    return {f.code for v in diagnose(s, FACTS).vms for n in v.nics for f in n.findings}


def same_as_scanning(s: HostSnapshot) -> None:
    shared = [n for v in diagnose(s, FACTS).vms for n in v.nics]
    alone = [diagnose_nic(s, FACTS, v, n) for v in s.vms for n in v.nics]
    assert shared == alone


def test_shared_tables_find_what_each_check_finds_alone() -> None:
    for name in ("bond-uplink", "macvtap", "proxmox", "vlan-bridge"):
        same_as_scanning(load(name))


def test_mac_and_mtu_findings_through_the_tables() -> None:
    s = load("bond-uplink")
    vm = next(v for v in s.vms if v.state == "running" and any(n.tap for n in v.nics))
    nic = next(n for n in vm.nics if n.tap)
    bridge = next(b for b in s.bridges if any(p.name == nic.tap for p in b.ports))
    other = next(p.name for p in bridge.ports if p.name != nic.tap)

    def with_fdb(fdb: tuple[FdbEntry, ...]) -> HostSnapshot:
        bridges = tuple(replace(b, fdb=fdb) if b.name == bridge.name else b for b in s.bridges)
        return replace(s, bridges=bridges)

    theirs = tuple(e for e in bridge.fdb if e.mac != nic.mac)
    elsewhere = with_fdb((*theirs, FdbEntry(nic.mac, other, None, "learned", 1.0,
                                            MacOwner("unknown", ""))))  # fmt: skip
    assert "mac.clash" in codes(elsewhere)
    same_as_scanning(elsewhere)
    silent = with_fdb(theirs)
    assert "guest.mac_not_learned" in codes(silent)
    same_as_scanning(silent)
    links = tuple(replace(lk, mtu=1400) if lk.name == other else lk for lk in s.links)
    small = replace(s, links=links)
    assert "mtu.mismatch" in codes(small)
    same_as_scanning(small)
