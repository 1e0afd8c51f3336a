"""The doctor on the fixtures of real host shapes (tests/fixtures/shapes.py): a VLAN the trunk
does not carry and a port without PVID are named as the root cause; a macvtap is not "a tap on
no bridge"; healthy shapes (bond uplink, Proxmox firewall bridges) have nothing wrong. Pure:
the facts are empty (no firewall rules read, no dnsmasq), the host model is the fixture's."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from kvmtui.core.jsondecode import decode_snapshot
from kvmtui.core.model import HostSnapshot
from kvmtui.core.paths import compute_paths
from kvmtui.doctor.engine import diagnose
from kvmtui.doctor.facts import HostFacts
from kvmtui.doctor.fwsim import Ruleset
from kvmtui.doctor.model import NicDiagnosis

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FACTS = HostFacts(ruleset=Ruleset(), bridge_nf_call_iptables=None)


def load(name: str) -> HostSnapshot:
    with open(FIXTURES / f"{name}.json") as f:
        return decode_snapshot(json.load(f))


def nics(s: HostSnapshot) -> dict[str, NicDiagnosis]:
    return {n.vm: n for v in diagnose(s, FACTS).vms for n in v.nics}


def test_vlan_findings_name_the_port_and_the_uplink() -> None:
    d = nics(load("vlan-bridge"))
    assert d["web"].findings == () and d["db"].findings == ()
    top = d["lab"].findings[0]
    assert (top.code, top.severity, top.hop) == ("vlan.not_on_uplink", "error", "eno1")
    assert "VLAN 50" in top.summary and top.fix == "bridge vlan add dev eno1 vid 50"
    top = d["odd"].findings[0]
    assert (top.code, top.hop) == ("vlan.no_pvid", "vnet3")
    assert top.fix is not None and "dev vnet3" in top.fix and "pvid untagged" in top.fix


def test_proxmox_no_pvid_on_vmbr0_names_the_veth_not_the_tap() -> None:
    s = load("proxmox")
    d = nics(s)
    assert d["web"].findings == () and d["db"].findings == ()
    bridges = tuple(
        replace(b, ports=tuple(replace(p, vlans=()) if p.name == "fwpr100p0" else p
                               for p in b.ports))
        for b in s.bridges
    )  # fmt: skip
    cut = replace(s, bridges=bridges)
    top = nics(replace(cut, paths=compute_paths(cut)))["web"].findings[0]
    assert (top.code, top.hop) == ("vlan.no_pvid", "fwpr100p0")


def test_macvtap_is_not_a_tap_on_no_bridge() -> None:
    d = nics(load("macvtap"))
    codes = {vm: [f.code for f in n.findings] for vm, n in d.items()}
    assert all("tap.no_bridge" not in c for c in codes.values()), codes
    assert nics(load("bond-uplink"))["web"].findings == ()


def _tap_off(s: HostSnapshot, tap: str) -> HostSnapshot:
    links = tuple(replace(lk, master=None) if lk.name == tap else lk for lk in s.links)
    bridges = tuple(replace(b, ports=tuple(p for p in b.ports if p.name != tap)) for b in s.bridges)
    cut = replace(s, links=links, bridges=bridges)
    return replace(cut, paths=compute_paths(cut))


def test_tap_off_a_libvirt_bridge_says_a_network_restart_leaves_it_there() -> None:
    """libvirt does not put running VMs' taps back on a NAT network's new bridge after
    net-destroy/net-start: the finding says so and how to re-plug them; a bridged network's
    VM (libvirt made no bridge) gets the plain fix."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from test_snapshot import snap

    s = snap()
    for vm_name, mode in (("nat-qemu", "nat"), ("br-qemu", "bridge")):
        vm = next(v for v in s.vms if v.name == vm_name)
        tap = vm.nics[0].tap
        assert tap
        (n,) = [n for v in diagnose(_tap_off(s, tap), FACTS).vms for n in v.nics if n.vm == vm_name]
        top = n.findings[0]
        assert (top.code, top.hop) == ("tap.no_bridge", tap)
        assert top.fix is not None and top.fix.startswith(f"ip link set {tap} master ")
        restart = "restarting libvirtd re-plugs them" in top.fix
        assert restart == (mode == "nat"), top.fix
