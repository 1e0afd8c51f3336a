"""The join of real host shapes (tests/fixtures/shapes.py): QEMU processes without libvirt as
VMs (Proxmox), per-port VLANs and VLAN filtering on the bridges, bond members; and the QEMU
command lines those VMs are read from. Pure: hand-built reader states, no host read."""

from __future__ import annotations

import json
from dataclasses import replace

from fixtures import shapes

from kvmtui.core.model import Vm, VmNic
from kvmtui.core.procs import ProcState, QemuNic, _is_qemu, _vmid, qemu_nics
from kvmtui.core.snapshot import build_snapshot
from kvmtui.core.virt import VirtState

# what qemu-server (Proxmox VE 8) starts, as psutil hands the arguments over (no shell quotes)
PVE = [
    "/usr/bin/kvm", "-id", "100", "-name", "web,debug-threads=on", "-no-shutdown",
    "-chardev", "socket,id=qmp,path=/var/run/qemu-server/100.qmp,server=on,wait=off",
    "-netdev", "type=tap,id=net0,ifname=tap100i0,script=/var/lib/qemu-server/pve-bridge,"
    "downscript=/var/lib/qemu-server/pve-bridgedown,vhost=on",
    "-device", "virtio-net-pci,mac=BC:24:11:5E:1A:2B,netdev=net0,bus=pci.0,addr=0x12,id=net0",
    "-netdev", "type=tap,id=net1,ifname=tap100i1,script=/var/lib/qemu-server/pve-bridge",
    "-device", "e1000,mac=BC:24:11:5E:1A:2C,netdev=net1,bus=pci.0,addr=0x13,id=net1",
    "-device", "virtio-scsi-pci,id=scsihw0,bus=pci.0,addr=0x5",
]  # fmt: skip
# what libvirt >= 7 starts: JSON options, the tap handed over as an fd (no ifname)
LIBVIRT = [
    "/usr/bin/qemu-system-x86_64", "-name", "guest=db,debug-threads=on",
    "-netdev", '{"type":"tap","fd":"34","vhost":true,"vhostfd":"36","id":"hostnet0"}',
    "-device", '{"driver":"virtio-net-pci","netdev":"hostnet0","id":"net0",'
    '"mac":"52:54:00:12:34:56","bus":"pci.1","addr":"0x0"}',
]  # fmt: skip


def test_qemu_command_lines_name_their_nics() -> None:
    assert qemu_nics(PVE) == (
        QemuNic("bc:24:11:5e:1a:2b", "tap100i0", "virtio-net-pci"),
        QemuNic("bc:24:11:5e:1a:2c", "tap100i1", "e1000"),
    )
    assert _vmid(PVE) == 100 and _vmid(LIBVIRT) is None
    assert qemu_nics(LIBVIRT) == (QemuNic("52:54:00:12:34:56", None, "virtio-net-pci"),)
    nic = ["qemu-system-x86_64", "-nic", "tap,ifname=tap7,model=virtio-net-pci,mac=52:54:00:0:0:7"]
    assert qemu_nics(nic) == (QemuNic("52:54:00:0:0:7", "tap7", "virtio-net-pci"),)
    # a -device without a netdev that exists, and broken JSON, name no NIC and raise nothing
    assert qemu_nics(["kvm", "-device", "e1000,mac=52:54:00:00:00:01,netdev=gone"]) == ()
    assert qemu_nics(["kvm", "-netdev", "{broken", "-device", "{also"]) == ()
    assert _is_qemu("kvm", ["/usr/bin/kvm"]) and _is_qemu("qemu-system-x86", ["x"])
    assert not _is_qemu("bash", ["/bin/bash", "-c", "kvm"])


def test_proxmox_vms_come_from_their_qemu_processes() -> None:
    nl, virt, procs = shapes.proxmox()
    s = build_snapshot(nl, virt, procs=procs, hostname="pve", taken_at=1.0)
    vms = {v.name: v for v in s.vms}
    assert set(vms) == {"web", "db"}
    web = vms["web"]
    assert (web.kind, web.pid, web.domain_id, web.state) == ("qemu", 2100, 100, "running")
    (nic,) = web.nics
    assert (nic.mac, nic.tap, nic.bridge, nic.type) == ("bc:24:11:00:01:00", "tap100i0",
                                                          "fwbr100i0", "bridge")  # fmt: skip
    # the ports name their VMs, and the libvirt problem still says why there is no libvirt
    fwbr = s.bridge("fwbr100i0")
    assert fwbr is not None and {p.name: p.vm for p in fwbr.ports}["tap100i0"] == "web"
    assert any(p.source == "libvirt" for p in s.problems)


def test_a_qemu_process_libvirt_knows_is_not_a_second_vm() -> None:
    nl, _virt, procs = shapes.proxmox()
    dom = Vm("web", "u", "running", (VmNic("bc:24:11:00:01:00", "bridge", tap="tap100i0"),))
    s = build_snapshot(nl, VirtState("qemu:///system", domains=(dom,), connected=True),
                       procs=procs)  # fmt: skip
    kinds = sorted((v.name, v.kind) for v in s.vms)
    assert kinds == [("db", "qemu"), ("web", "libvirt")]
    assert next(v for v in s.vms if v.name == "web").pid == 2100


def test_a_tap_handed_over_by_fd_is_paired_when_it_is_the_only_one() -> None:
    nl, virt, procs = shapes.proxmox()
    q = replace(procs.qemu[1], nics=(QemuNic("bc:24:11:00:01:01", None, "e1000"),))
    s = build_snapshot(nl, virt, procs=replace(procs, qemu=(procs.qemu[0], q)))
    db = next(v for v in s.vms if v.name == "db")
    assert db.nics[0].tap == "tap101i0" and db.nics[0].bridge == "vmbr0"
    # two NICs without names and one held tap: which is which cannot be told, so neither
    two = replace(q, nics=(*q.nics, QemuNic("bc:24:11:00:01:02")))
    s = build_snapshot(nl, virt, procs=replace(procs, qemu=(procs.qemu[0], two)))
    db = next(v for v in s.vms if v.name == "db")
    assert [n.tap for n in db.nics] == [None, None]
    assert ProcState().qemu == ()


def test_vlans_and_bonds_reach_the_bridges_and_links() -> None:
    nl, virt, procs = shapes.proxmox()
    s = build_snapshot(nl, virt, procs=procs)
    vmbr0 = s.bridge("vmbr0")
    assert vmbr0 is not None and vmbr0.vlan_filtering is True
    ports = {p.name: p for p in vmbr0.ports}
    assert ports["fwpr100p0"].pvid == 20 and ports["tap101i0"].pvid == 1
    assert [v.vid for v in ports["bond0"].vlans] == [1, 20, 30] and ports["bond0"].pvid == 1
    assert [v.vid for v in vmbr0.vlans] == [1]
    assert vmbr0.uplinks == ("bond0",)
    fwbr = s.bridge("fwbr100i0")
    assert fwbr is not None and fwbr.vlan_filtering is False and fwbr.uplinks == ()
    # the veth pair between the two bridges names its other end and that end's bridge
    assert {p.name: p.owner for p in fwbr.ports}["fwln100i0"] == "veth -> fwpr100p0 on vmbr0"
    assert ports["fwpr100p0"].owner == "veth -> fwln100i0 on fwbr100i0"
    bond = s.link("bond0")
    assert bond is not None and bond.bond_members == ("eno1", "eno2")


def test_fixture_files_are_what_the_shapes_give_today() -> None:
    """The JSON files are the shapes joined by today's code (re-run tests/fixtures/shapes.py
    when the model changes): a stale fixture would test a host kvmtui no longer describes."""
    for name in shapes.SHAPES:
        with open(shapes.path_of(name)) as f:
            on_disk = json.load(f)
        assert on_disk == json.loads(json.dumps(shapes.document(name))), name
