"""The paths on the fixtures of real host shapes (tests/fixtures/*.json, see shapes.py): a
VLAN-aware bridge, a bond uplink, macvtap NICs, a Proxmox host. The documents carry no paths:
decoding one computes them with today's rules, and ``kvmtui --replay FIXTURE`` reads it as a
host."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from fixtures.shapes import path_of

from kvmtui.core.jsondecode import decode_snapshot
from kvmtui.core.jsonout import snapshot_json
from kvmtui.core.model import Hop, HostSnapshot, NicPath
from kvmtui.core.paths import compute_paths

KVMTUI = [sys.executable, "-m", "kvmtui"]


def load(name: str) -> HostSnapshot:
    with open(path_of(name)) as f:
        doc = json.load(f)
    assert "paths" not in doc  # the point: the paths below are today's code's
    return decode_snapshot(doc)


def only(s: HostSnapshot, vm: str) -> NicPath:
    (p,) = s.paths_of(vm)
    return p


def hop(p: NicPath, dev: str) -> Hop:
    return next(h for h in p.hops if h.dev == dev)


def ev(h: Hop, what: str) -> tuple[str, bool | None]:
    e = next(e for e in h.evidence if e.what == what)
    return e.value, e.ok


def test_vlan_aware_bridge_vm_leaves_the_trunk_tagged_with_its_pvid() -> None:
    s = load("vlan-bridge")
    for vm, tap, vid in (("web", "vnet0", 20), ("db", "vnet1", 30)):
        p = only(s, vm)
        assert [h.dev for h in p.hops] == [tap, "br0", "eno1", None]
        assert p.way_out is True and f"VLAN {vid}" in p.verdict
        assert hop(p, "br0").vlan == vid and f"PVID {vid}" in ev(hop(p, "br0"), "VLAN")[0]
        up = hop(p, "eno1")
        assert (up.role, up.vlan, up.tagged, up.ok) == ("uplink", vid, True, True)
        assert ev(up, "VLAN") == (f"{vid} leaves eno1 tagged", True)


def test_vlan_not_on_the_trunk_and_a_tap_without_pvid_have_no_way_out() -> None:
    s = load("vlan-bridge")
    lab = only(s, "lab")  # access port in VLAN 50, the trunk carries 1, 20, 30
    assert lab.way_out is False and lab.verdict == (
        "no way out: VLAN 50 is not allowed on uplink port eno1"
    )
    assert hop(lab, "eno1").ok is False and hop(lab, "eno1").vlan is None
    odd = only(s, "odd")  # member of 40 tagged only: its untagged frames have no VLAN
    assert odd.way_out is False and "vnet3 has no PVID" in odd.verdict
    assert [h.dev for h in odd.hops] == ["vnet3", "br0"] and odd.hops[-1].ok is False
    # the same ports with VLAN filtering off: the VLANs mean nothing, everyone leaves
    flat = replace(s, bridges=tuple(replace(b, vlan_filtering=False) for b in s.bridges))
    assert all(p.way_out and p.hops[-2].vlan is None for p in compute_paths(flat))


def test_bond_uplink_names_its_mode_and_members() -> None:
    s = load("bond-uplink")
    p = only(s, "web")
    assert [h.dev for h in p.hops] == ["vnet0", "br0", "bond0", None]
    up = hop(p, "bond0")
    assert ev(up, "bond mode") == ("802.3ad", None)
    assert ev(up, "bond members") == ("eno1 up, eno2 down", True)  # one member up is enough
    assert p.way_out is True
    # both members down: the bond carries nothing
    links = tuple(replace(lk, state="down") if lk.name == "eno1" else lk for lk in s.links)
    p = next(q for q in compute_paths(replace(s, links=links)) if q.vm == "web")
    assert ev(hop(p, "bond0"), "bond members") == ("eno1 down, eno2 down", False)
    assert p.way_out is False and "bond0" in p.verdict


def test_vlan_link_on_a_bond_tags_the_frames_and_names_the_members() -> None:
    p = only(load("bond-uplink"), "app")  # br20 <- bond0.20 <- bond0 <- eno1, eno2
    assert [h.dev for h in p.hops] == ["vnet1", "br20", "bond0.20", None]
    up = hop(p, "bond0.20")
    assert (up.vlan, up.tagged, up.ok) == (20, True, True)
    assert ev(up, "VLAN") == ("bond0.20 tags VLAN 20 on bond0", None)
    assert ev(up, "bond members") == ("eno1 up, eno2 down", True)
    assert p.verdict == "leaves through bond0.20 unchanged in VLAN 20: no NAT"


@pytest.mark.parametrize(
    "vm,mode,tap,lower,kmode",
    [("mv-bridge", "direct", "macvtap0", "eno1", "bridge"),
     ("mv-vepa", "direct", "macvtap1", "eno1", "vepa"),
     ("mv-private", "private", "macvtap2", "eno1", "private"),
     ("mv-passthru", "direct", "macvtap3", "eno2", "passthru")],
)  # fmt: skip
def test_macvtap_paths_are_tapless_and_say_the_host_cannot_reach_them(
    vm: str, mode: str, tap: str, lower: str, kmode: str
) -> None:
    p = only(load("macvtap"), vm)
    assert p.mode == mode
    assert [(h.dev, h.role) for h in p.hops] == [(tap, "macvtap"), (lower, "uplink")]
    assert not any(h.role in ("tap", "bridge") for h in p.hops)
    assert ev(p.hops[0], "macvtap mode") == (kmode, None)
    assert p.way_out and f"leaves through {lower} directly (macvtap {kmode})" in p.verdict
    (note,) = p.notes
    if kmode == "passthru":
        assert note.startswith(f"passthru: the VM has {lower} to itself")
    else:
        assert note.startswith(f"the host cannot reach this VM over {lower}")


def test_proxmox_vm_goes_through_its_firewall_bridge_to_vmbr0() -> None:
    s = load("proxmox")
    assert {v.name: v.kind for v in s.vms} == {"web": "qemu", "db": "qemu"}
    p = only(s, "web")
    assert [(h.dev, h.role) for h in p.hops] == [
        ("tap100i0", "tap"), ("fwbr100i0", "bridge"), ("fwln100i0", "veth"),
        ("fwpr100p0", "veth"), ("vmbr0", "bridge"), ("bond0", "uplink"), (None, "lan"),
    ]  # fmt: skip
    assert p.mode == "bridge" and p.way_out is True
    # the FDB is checked on each bridge against the port frames enter it on
    assert (
        ev(hop(p, "fwbr100i0"), "FDB")[1] is True
        and "tap100i0" in ev(hop(p, "fwbr100i0"), "FDB")[0]
    )
    assert ev(hop(p, "vmbr0"), "FDB")[1] is True and "fwpr100p0" in ev(hop(p, "vmbr0"), "FDB")[0]
    up = hop(p, "bond0")
    assert (up.vlan, up.tagged) == (20, True)  # fwpr100p0 is VLAN 20's access port on vmbr0
    assert ev(up, "bond mode") == ("active-backup", None)
    assert any("fwbr100i0" in n and "firewall" in n for n in p.notes)
    db = only(s, "db")  # no firewall: tap101i0 straight on vmbr0, VLAN 1 untagged
    assert [h.dev for h in db.hops] == ["tap101i0", "vmbr0", "bond0", None]
    assert (hop(db, "bond0").vlan, hop(db, "bond0").tagged) == (1, False) and db.notes == ()


def test_proxmox_vm_with_its_veth_pair_cut_has_no_way_out() -> None:
    s = load("proxmox")
    links = tuple(replace(lk, master=None) if lk.name == "fwpr100p0" else lk for lk in s.links)
    p = next(q for q in compute_paths(replace(s, links=links)) if q.vm == "web")
    assert p.way_out is False and p.verdict == "no way out: bridge fwbr100i0 has no uplink port"


@pytest.mark.parametrize("name", ["vlan-bridge", "bond-uplink", "macvtap", "proxmox"])
def test_fixture_round_trips_with_its_new_fields(name: str) -> None:
    s = load(name)
    doc = json.loads(json.dumps(snapshot_json(s)))
    assert decode_snapshot(doc) == s
    vlans = [p.vlans for b in s.bridges for p in b.ports]
    kinds = {lk.kind for lk in s.links}
    if name in ("vlan-bridge", "proxmox"):
        assert any(vlans)
    if "bond" in kinds:
        assert any(lk.bond_members for lk in s.links)
    if "macvtap" in kinds:
        assert all(lk.lower and lk.macvlan_mode for lk in s.links if lk.kind == "macvtap")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KVMTUI, *args], capture_output=True, text=True, timeout=60)


def test_replay_of_a_fixture_runs_path_and_inventory() -> None:
    cp = run("--replay", path_of("proxmox"), "path", "web", "--json")
    assert cp.returncode == 0, cp.stderr
    out = json.loads(cp.stdout)
    (p,) = out["paths"]
    assert [h["dev"] for h in p["hops"]][:5] == [
        "tap100i0", "fwbr100i0", "fwln100i0", "fwpr100p0", "vmbr0",
    ]  # fmt: skip
    assert p["hops"][5]["vlan"] == 20 and p["hops"][5]["tagged"] is True and p["notes"]
    inv = run("--replay", path_of("vlan-bridge"), "inventory", "--json")
    assert inv.returncode == 0, inv.stderr
    assert json.loads(inv.stdout) == json.loads(json.dumps(snapshot_json(load("vlan-bridge"))))
    txt = run("--replay", path_of("macvtap"), "path", "mv-bridge")
    assert txt.returncode == 0 and "note: the host cannot reach this VM over eno1" in txt.stdout


def test_replay_of_a_foreign_or_cut_json_document_is_one_line_exit_2(tmp_path: Path) -> None:
    cut = tmp_path / "cut.json"
    cut.write_text(Path(path_of("proxmox")).read_text()[:500])
    other = tmp_path / "other.json"
    other.write_text('{"not": "a host"}')
    for f in (cut, other):
        cp = run("--replay", str(f), "inventory", "--json")
        assert cp.returncode == 2 and cp.stdout == ""
        assert len(cp.stderr.strip().splitlines()) == 1 and "Traceback" not in cp.stderr
        assert "not a kvmtui inventory document" in cp.stderr


def test_inventory_text_shows_vlans_and_bond_members() -> None:
    import io

    from kvmtui.commands.inventory import print_inventory

    out = io.StringIO()
    print_inventory(load("proxmox"), out)
    lines = out.getvalue().splitlines()
    vmbr0 = next(ln for ln in lines if ln.startswith("  vmbr0 "))
    fwbr = next(ln for ln in lines if ln.startswith("  fwbr100i0 "))
    assert vmbr0.endswith("vlan-aware") and not fwbr.endswith("vlan-aware")
    bond = next(ln for ln in lines if ln.startswith("    port bond0 "))
    assert "bond active-backup: eno1 eno2" in bond and "vlan 1 PVID untagged, 20, 30" in bond
    fwpr = next(ln for ln in lines if ln.startswith("    port fwpr100p0 "))
    assert fwpr.endswith("vlan 20 PVID untagged")
