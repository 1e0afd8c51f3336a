"""The host model on the real lab (libvirtd, dnsmasq, light VMs, QEMU guests), checked against
what the lab built (kvmtui/lab/spec.py): every bridge, port, FDB owner, lease, VM NIC and path;
and the CLI (`kvmtui inventory --json`, `kvmtui path`) through `kvmtui lab exec`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from kvmtui.core.model import HostSnapshot
from kvmtui.core.snapshot import read_host
from kvmtui.lab import spec
from kvmtui.lab.handle import LabHandle

pytestmark = pytest.mark.lab


def kvmtui_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "kvmtui", *args]


def _seen(lab: LabHandle) -> dict[str, str]:
    """Every VM's IP (waiting for DHCP), and make sure the host has seen each bridged VM and
    the LAN router (a ping from the host: the neighbour table is how bridged IPs are known)."""
    ips = {vm.name: lab.wait_ip(vm.name, timeout=90) for vm in lab.vms}
    for vm in lab.vms:
        if vm.network == spec.BR_NET:
            lab.run(lab.host_ns, "busybox", "ping", "-c1", "-W2", ips[vm.name])
    lab.run(lab.host_ns, "busybox", "ping", "-c1", "-W2", spec.LAN_ROUTER_IP)
    return ips


@pytest.fixture(scope="module")
def seen(lab: LabHandle) -> tuple[HostSnapshot, dict[str, str]]:
    ips = _seen(lab)
    deadline = time.monotonic() + 30
    while True:  # the FDB must hold every guest MAC (guests ping every few seconds)
        snap = read_host(uri=lab.uri, netns=lab.host_ns)
        macs = {f.mac for b in snap.bridges for f in b.fdb}
        if all(vm.mac in macs for vm in lab.vms) or time.monotonic() > deadline:
            return snap, ips
        time.sleep(0.5)


def vm_of(lab: LabHandle, snap: HostSnapshot, vm: spec.LabVm):  # type: ignore[no-untyped-def]
    name = lab.vm_ns(vm.name) if vm.kind == "light" else vm.name
    v = snap.vm(name)
    assert v is not None, f"{name} missing; VMs: {[x.name for x in snap.vms]}"
    return v


def test_bridges_ports_and_uplinks(lab: LabHandle, seen) -> None:  # type: ignore[no-untyped-def]
    snap, _ = seen
    assert snap.problems == (), snap.problems
    assert snap.uplink == spec.UPLINK and snap.ip_forward is True
    for name, net in (
        (spec.NAT_BRIDGE, spec.NAT_NET),
        (spec.ISO_BRIDGE, spec.ISO_NET),
        (spec.BR_BRIDGE, spec.BR_NET),
    ):
        br = snap.bridge(name)
        assert br is not None and br.state == "up", name
        assert br.networks == (net,)
        ports = {p.name for p in br.ports}
        expected = {vm.tap for vm in lab.vms if vm.bridge == name and vm.tap}
        assert expected <= ports, (name, ports)
    # every VM's port says whose it is; ens9 is the uplink
    for vm in lab.vms:
        v = vm_of(lab, snap, vm)
        br = snap.bridge(vm.bridge)
        assert br is not None
        port = next(p for p in br.ports if p.name == v.nics[0].tap)
        assert (port.vm, port.owner) == (v.name, f"VM {v.name}")
        assert port.kind == ("veth" if vm.kind == "light" else "tap")
        assert port.stp_state == "forwarding" and port.mac == vm.tap_mac
        if vm.kind == "light":
            assert port.peer_netns == lab.vm_ns(vm.name)
    br0 = snap.bridge(spec.BR_BRIDGE)
    assert br0 is not None and br0.uplinks == (spec.BR_NIC,)
    ens9 = next(p for p in br0.ports if p.name == spec.BR_NIC)
    assert (ens9.owner, ens9.vm, ens9.peer_netns) == ("uplink", None, lab.ns(spec.NS_LAN))
    assert f"{spec.BR_HOST_CIDR}" in br0.addresses
    assert snap.bridge(spec.NAT_BRIDGE).addresses[0] == f"{spec.NAT_GATEWAY}/{spec.NAT_PREFIX}"  # type: ignore[union-attr]
    # nothing else is a namespace guest: the LAN behind ens9 is not a VM
    assert snap.vm(lab.ns(spec.NS_LAN)) is None


def test_networks_and_leases(lab: LabHandle, seen) -> None:  # type: ignore[no-untyped-def]
    snap, ips = seen
    modes = {n.name: (n.mode, n.bridge, n.active) for n in snap.networks}
    assert modes == {
        spec.NAT_NET: ("nat", spec.NAT_BRIDGE, True),
        spec.ISO_NET: ("isolated", spec.ISO_BRIDGE, True),
        spec.BR_NET: ("bridge", spec.BR_BRIDGE, True),
    }
    nat = snap.network(spec.NAT_NET)
    assert nat is not None and nat.nat_rule is True
    assert (nat.addresses[0].ranges[0].start, nat.addresses[0].ranges[0].end) == spec.NAT_RANGE
    for vm in lab.vms:
        net = snap.network(vm.network)
        assert net is not None
        leases = {le.mac: le for le in net.leases}
        if vm.network == spec.BR_NET:
            assert leases == {}  # the LAN's dnsmasq, not libvirt's, serves the bridged VMs
            continue
        assert vm.mac in leases, (vm.name, leases)
        assert leases[vm.mac].ip == ips[vm.name]
        assert leases[vm.mac].expiry and leases[vm.mac].expiry > time.time()


def test_every_vm_nic(lab: LabHandle, seen) -> None:  # type: ignore[no-untyped-def]
    snap, ips = seen
    for vm in lab.vms:
        v = vm_of(lab, snap, vm)
        assert v.state == "running"
        (nic,) = v.nics
        assert nic.mac == vm.mac
        assert nic.bridge == vm.bridge and nic.network == vm.network
        assert nic.ip == ips[vm.name], vm.name
        assert nic.ip_source == ("neighbour" if vm.network == spec.BR_NET else "lease")
        if vm.kind == "light":
            assert v.kind == "light" and nic.tap == vm.tap and nic.type == "veth"
        else:
            assert v.kind == "libvirt" and nic.type in ("network", "bridge")
            assert nic.tap and nic.tap.startswith("vnet")
            link = snap.link(nic.tap)
            assert link is not None and link.kind == "tap" and link.mac == vm.tap_mac
            assert link.master == vm.bridge
            assert v.pid is not None
            with open(f"/proc/{v.pid}/cmdline", "rb") as f:
                assert f"guest={vm.name}".encode() in f.read()


def test_fdb_owners(lab: LabHandle, seen) -> None:  # type: ignore[no-untyped-def]
    snap, ips = seen
    for vm in lab.vms:
        v = vm_of(lab, snap, vm)
        tap = v.nics[0].tap
        br = snap.bridge(vm.bridge)
        assert br is not None
        e = next((f for f in br.fdb if f.mac == vm.mac), None)
        assert e is not None, f"{vm.mac} not in {vm.bridge}'s FDB"
        assert (e.port, e.kind) == (tap, "learned")
        assert e.age_s is not None and 0 <= e.age_s < 300
        assert (e.owner.kind, e.owner.name, e.owner.nic, e.owner.ip) == (
            "vm", v.name, tap, ips[vm.name],
        )  # fmt: skip
        t = next(f for f in br.fdb if f.mac == vm.tap_mac)
        assert (t.port, t.kind, t.owner.kind, t.owner.name) == (tap, "permanent", "host", tap)
    virbr0 = snap.bridge(spec.NAT_BRIDGE)
    assert virbr0 is not None
    own = next(f for f in virbr0.fdb if f.mac == virbr0.mac)
    assert (own.owner.kind, own.owner.name, own.owner.ip) == (
        "host",
        spec.NAT_BRIDGE,
        spec.NAT_GATEWAY,
    )
    br0 = snap.bridge(spec.BR_BRIDGE)
    assert br0 is not None
    router = next(f for f in br0.fdb if f.mac == spec.LAN_ROUTER_MAC)
    assert router.port == spec.BR_NIC and router.kind == "learned"
    assert (router.owner.kind, router.owner.ip) == ("neighbour", spec.LAN_ROUTER_IP)


def test_paths(lab: LabHandle, seen) -> None:  # type: ignore[no-untyped-def]
    snap, ips = seen
    for vm in lab.vms:
        v = vm_of(lab, snap, vm)
        (p,) = snap.paths_of(v.name)
        tap = v.nics[0].tap
        devs = [h.dev for h in p.hops]
        if vm.network == spec.NAT_NET:
            assert devs == [tap, spec.NAT_BRIDGE, None, spec.UPLINK]
            assert p.way_out and p.mode == "nat"
            assert p.verdict == (
                f"leaves through {spec.UPLINK}, source NATed to {spec.UPLINK_IP} (MASQUERADE)"
            )
        elif vm.network == spec.BR_NET:
            assert devs == [tap, spec.BR_BRIDGE, spec.BR_NIC, None]
            assert p.way_out and p.verdict == f"leaves through {spec.BR_NIC} unchanged: no NAT"
            assert ips[vm.name] in p.hops[-1].evidence[0].value
        else:
            assert devs == [tap, spec.ISO_BRIDGE, None]
            assert not p.way_out
            assert p.verdict == "no way out: isolated network (no <forward>)"
        fdb_ev = next(e for e in p.hops[1].evidence if e.what == "FDB")
        assert fdb_ev.ok is True and tap in fdb_ev.value


def _lab_exec(lab: LabHandle, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        kvmtui_cmd("lab", "--prefix", lab.prefix, "exec", "--", *kvmtui_cmd(*args)),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_cli_inventory_json(lab: LabHandle, seen) -> None:  # type: ignore[no-untyped-def]
    _, ips = seen
    cp = _lab_exec(lab, "inventory", "--json")
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    assert doc["schema"] == 1 and doc["problems"] == []
    assert {b["name"] for b in doc["bridges"]} >= {spec.NAT_BRIDGE, spec.ISO_BRIDGE, spec.BR_BRIDGE}
    br0 = next(b for b in doc["bridges"] if b["name"] == spec.BR_BRIDGE)
    assert {"name": spec.BR_NIC, "kind": "veth", "state": "up"}.items() <= next(
        p for p in br0["ports"] if p["name"] == spec.BR_NIC
    ).items()
    for f in br0["fdb"]:
        assert f["kind"] in ("learned", "static", "permanent")
        assert set(f) >= {"mac", "port", "kind", "age_s", "owner"}
    nets = {n["name"]: n for n in doc["networks"]}
    assert nets[spec.NAT_NET]["mode"] == "nat" and nets[spec.NAT_NET]["active"] is True
    lease_macs = {le["mac"]: le for le in nets[spec.NAT_NET]["leases"]}
    for vm in lab.vms:
        if vm.network == spec.NAT_NET:
            assert lease_macs[vm.mac]["ip"] == ips[vm.name]
            assert set(lease_macs[vm.mac]) >= {"mac", "ip", "hostname"}
    vms = {v["name"]: v for v in doc["vms"]}
    for vm in lab.vms:
        name = lab.vm_ns(vm.name) if vm.kind == "light" else vm.name
        nic = vms[name]["nics"][0]
        assert (nic["mac"], nic["network"], nic["bridge"], nic["ip"]) == (
            vm.mac, vm.network, vm.bridge, ips[vm.name],
        )  # fmt: skip
        assert set(nic) >= {"mac", "tap", "network", "bridge", "ip", "ip_source"}
    assert {lk["name"] for lk in doc["links"]} >= {spec.UPLINK, spec.BR_NIC}
    for p in doc["paths"]:
        for h in p["hops"]:
            assert set(h) >= {"dev", "role", "evidence"}


def test_cli_path(lab: LabHandle, seen) -> None:  # type: ignore[no-untyped-def]
    nat = next(vm for vm in lab.vms if vm.network == spec.NAT_NET)
    name = lab.vm_ns(nat.name) if nat.kind == "light" else nat.name
    cp = _lab_exec(lab, "path", name, "--json")
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(cp.stdout)
    (p,) = doc["paths"]
    assert [h["role"] for h in p["hops"]] == ["tap", "bridge", "nat", "uplink"]
    assert p["way_out"] is True and p["mac"] == nat.mac
    # by MAC, in text
    cp = _lab_exec(lab, "path", nat.mac)
    assert cp.returncode == 0 and f"leaves through {spec.UPLINK}" in cp.stdout
    # a namespace guest by its short name, evidence one per line
    cp = _lab_exec(lab, "path", "iso-a")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.startswith(f"{lab.vm_ns('iso-a')} {spec.lab_vm('iso-a').mac} [isolated]")
    assert "no way out: isolated network (no <forward>)" in cp.stdout
    assert "      STP state: forwarding [ok]" in cp.stdout
    cp = _lab_exec(lab, "path", "no-such-vm")
    assert cp.returncode == 2
    assert "no VM, tap or MAC 'no-such-vm'" in cp.stderr and name in cp.stderr
    assert "Traceback" not in cp.stderr
