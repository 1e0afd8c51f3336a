"""Capture on the real lab (libvirtd, its dnsmasq, MASQUERADE, light VMs and QEMU guests).

Paths come from the real host model (``read_host`` with the lab's libvirt URI, in the lab's host
namespace), exactly as the UI and ``kvmtui trace`` get them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.dhcp import check_lease
from kvmtui.capture.engine import CaptureSession
from kvmtui.capture.ring import PacketRing
from kvmtui.commands.capture import select_path
from kvmtui.core.conntrack import entries_for
from kvmtui.core.model import HostSnapshot, NicPath
from kvmtui.core.snapshot import read_host
from kvmtui.lab import spec
from kvmtui.lab.handle import LabHandle

pytestmark = pytest.mark.lab
PING_SIZE = 77


def snap(lab: LabHandle) -> HostSnapshot:
    return read_host(uri=lab.uri, netns=lab.host_ns)


def path_of(lab: LabHandle, vm: spec.LabVm) -> tuple[NicPath, HostSnapshot]:
    s = snap(lab)
    p, why = select_path(s, vm.mac)
    assert p is not None, why
    return p, s


def session(lab: LabHandle, vm: spec.LabVm, **kw: object) -> CaptureSession:
    p, s = path_of(lab, vm)
    return CaptureSession(
        p, netns=lab.host_ns, networks=s.networks,
        vm_by_mac={n.mac: v.name for v in s.vms for n in v.nics},
        resolve=lambda mac: select_path(snap(lab), mac)[0], **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def collect(s: CaptureSession, seconds: float) -> list[PacketRow]:
    rows: list[PacketRow] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.1)
        rows.extend(s.poll().rows)
    return rows


def pings(rows: list[PacketRow], src: str, dst: str) -> list[PacketRow]:
    return [
        r for r in rows
        if r.frame.proto == "icmp" and r.frame.icmp_type == 8 and r.frame.src_ip == src
        and r.frame.dst_ip == dst and r.frame.payload_len == PING_SIZE
    ]  # fmt: skip


def light_ping(lab: LabHandle, vm: spec.LabVm, dst: str, count: int = 3) -> str:
    # an unusual size tells our pings from the ones the light VM sends by itself
    ns = lab.vm_ns(vm.name)
    size = str(PING_SIZE)
    cp = lab.run(ns, "busybox", "ping", "-c", str(count), "-i", "0.3", "-W", "2", "-s", size, dst)
    return cp.stdout


def test_nat_vm_ping_tap_virbr0_wan0_and_conntrack(lab: LabHandle) -> None:
    vm = spec.lab_vm("nat-light")
    ip = lab.wait_ip(vm.name)
    with session(lab, vm) as s:
        assert "3 packets received" in light_ping(lab, vm, spec.INTERNET_IP)
        rows = collect(s, 1.0)
    reqs = pings(rows, ip, spec.INTERNET_IP)
    assert len(reqs) == 3
    ct = entries_for(ip, lab.host_ns, proto=1)
    for r in reqs:
        assert [h.dev for h in r.hops] == [vm.tap, spec.NAT_BRIDGE, spec.UPLINK]
        assert r.nat is not None
        assert r.nat.from_ == f"{ip}:{r.frame.icmp_id}"
        assert r.nat.to.startswith(spec.UPLINK_IP + ":")
        assert r.nat.conntrack is True, r.nat.conntrack_detail
        assert r.hops[-1].frame.src_ip == spec.UPLINK_IP
        port = int(r.nat.to.rsplit(":", 1)[1])
        assert any(e.orig[1] == r.frame.icmp_id and e.reply[3] == port for e in ct)
    replies = [
        r for r in rows
        if r.frame.icmp_type == 0 and r.frame.dst_ip == ip and r.frame.src_ip == spec.INTERNET_IP
        and r.frame.payload_len == PING_SIZE
    ]  # fmt: skip
    assert len(replies) == 3
    assert all([h.dev for h in r.hops] == [spec.UPLINK, spec.NAT_BRIDGE, vm.tap] for r in replies)


def test_bridged_vm_ping_tap_br0_ens9_no_nat(lab: LabHandle) -> None:
    vm = spec.lab_vm("br-light")
    ip = lab.wait_ip(vm.name)
    with session(lab, vm) as s:
        assert "3 packets received" in light_ping(lab, vm, spec.LAN_ROUTER_IP)
        rows = collect(s, 1.0)
    reqs = pings(rows, ip, spec.LAN_ROUTER_IP)
    assert len(reqs) == 3
    for r in reqs:
        assert [h.dev for h in r.hops] == [vm.tap, spec.BR_BRIDGE, spec.BR_NIC]
        assert r.nat is None and r.stopped is None
        assert r.hops[-1].frame.src_ip == ip  # unchanged on the LAN


def send_raw_ping(lab: LabHandle, vm: spec.LabVm, src_ip: str, gw_mac: str, dst: str) -> int:
    """Frames from the VM's eth0 to its gateway's MAC for ``dst`` (the host-only guest has no
    default route, so its own ping would not even leave it); nothing in the VM is changed."""
    import socket

    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    from kvmtui.core.netns import in_netns

    with in_netns(lab.vm_ns(vm.name)):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        sock.bind(("eth0", 0))
        for seq in range(2):
            pkt = Ether(src=vm.mac, dst=gw_mac) / IP(src=src_ip, dst=dst, id=4000 + seq) / ICMP(
                id=4242, seq=seq
            ) / (b"k" * PING_SIZE)  # fmt: skip
            sock.send(bytes(pkt))
            time.sleep(0.2)
    finally:
        sock.close()
    return 2


def test_host_only_vm_never_on_the_uplink(lab: LabHandle) -> None:
    vm = spec.lab_vm("iso-a")
    ip = lab.wait_ip(vm.name)
    p, s0 = path_of(lab, vm)
    br = s0.bridge(spec.ISO_BRIDGE)
    assert br is not None
    witness = PacketRing(spec.UPLINK, lab.host_ns, f"host {ip}")
    try:
        with session(lab, vm) as s:
            hop_devs = [h.dev for h in s.poll().hops]
            send_raw_ping(lab, vm, ip, br.mac, spec.INTERNET_IP)
            rows = collect(s, 1.0)
        assert spec.UPLINK not in hop_devs and not p.way_out
        reqs = pings(rows, ip, spec.INTERNET_IP)
        assert len(reqs) == 2
        for r in reqs:
            assert [h.dev for h in r.hops] == [vm.tap, spec.ISO_BRIDGE]
            assert r.stopped is not None and "isolated" in r.stopped
        time.sleep(0.2)
        assert witness.stats().received == 0  # really never on wan0
    finally:
        witness.close()


def one_shot_dhcp(lab: LabHandle, vm: spec.LabVm) -> subprocess.CompletedProcess[str]:
    """A DHCP exchange from the light VM without touching its configuration (script /bin/true)."""
    return lab.run(
        lab.vm_ns(vm.name), "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "8",
        "-T", "2", "-s", "/bin/true", timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "role", "server_ip", "dev"),
    [
        ("nat-light", "libvirt-dnsmasq", spec.NAT_GATEWAY, spec.NAT_BRIDGE),
        ("br-light", "lan", spec.LAN_ROUTER_IP, spec.BR_NIC),
    ],
)
def test_light_vm_dhcp_server_named(
    lab: LabHandle, name: str, role: str, server_ip: str, dev: str
) -> None:
    vm = spec.lab_vm(name)
    lab.wait_ip(vm.name)
    with session(lab, vm) as s:
        cp = one_shot_dhcp(lab, vm)
        assert "obtained" in cp.stderr, cp.stderr
        time.sleep(0.6)
        txs = [t for t in s.transactions() if t.client == vm.mac and t.acked]
    assert txs, "no acked DHCP transaction seen"
    tx = txs[-1]
    assert tx.server is not None
    assert (tx.server.role, tx.server.ip, tx.server.dev) == (role, server_ip, dev)
    assert "offer" in [m.type for m in tx.messages] and "ack" in [m.type for m in tx.messages]
    lc = check_lease(tx, lab.uri)
    if role == "lan":
        assert tx.server.mac == spec.LAN_ROUTER_MAC
        assert tx.server.name == f"the LAN's DHCP server behind {spec.BR_NIC}"
        assert lc.status == "none"
    else:
        assert tx.server.name == f"libvirt's dnsmasq on {spec.NAT_BRIDGE} (network {spec.NAT_NET})"
        assert lc.status == "match", lc.detail


def _kvmtui(lab: LabHandle, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return lab.run(lab.host_ns, sys.executable, "-m", "kvmtui", "-c", lab.uri, *args,
                   timeout=timeout)  # fmt: skip


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("name", "role", "server_ip", "dev"),
    [
        ("nat-qemu", "libvirt-dnsmasq", spec.NAT_GATEWAY, spec.NAT_BRIDGE),
        ("br-qemu", "lan", spec.LAN_ROUTER_IP, spec.BR_NIC),
    ],
)
def test_qemu_guest_boot_dhcp_via_cli(
    lab: LabHandle, name: str, role: str, server_ip: str, dev: str
) -> None:
    """Restart the guest through libvirt-python while ``kvmtui dhcp`` watches: its tap vanishes,
    comes back (maybe as another vnetN), and the boot's DHCP exchange is decoded."""
    if not lab.qemu:
        pytest.skip("lab without QEMU guests (KVMTUI_LAB_QEMU=0)")
    if lab.prefix == "kvdev-":
        pytest.skip("never restart the shared kvdev- lab's guests")
    import libvirt

    out: dict[str, subprocess.CompletedProcess[str]] = {}

    def watch() -> None:
        out["r"] = _kvmtui(lab, "dhcp", name, "--json", "--timeout", "120", timeout=150)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    time.sleep(4)  # the capture is up
    conn = libvirt.open(lab.uri)
    try:
        dom = conn.lookupByName(name)
        dom.destroy()
        time.sleep(2)
        dom.create()
    finally:
        conn.close()
    t.join(160)
    r = out["r"]
    assert r.returncode == 0, r.stderr
    tx = json.loads(r.stdout)
    assert tx["server"]["role"] == role and tx["server"]["ip"] == server_ip
    assert tx["server"]["dev"] == dev
    assert tx["client"] == spec.lab_vm(name).mac
    assert [m["type"] for m in tx["messages"]][-1] == "ack"
    if role == "libvirt-dnsmasq":
        assert tx["lease_check"]["status"] == "match", tx["lease_check"]
    assert "vanished" in r.stderr and "is back as" in r.stderr  # the tap went and came back
