"""Processes behind VMs and taps: the QEMU command line's ``-name guest=NAME`` and the tun
driver's ``iff:`` line in /proc/PID/fdinfo."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from kvmtui.core.procs import _guest_name, read_procs, tap_names_of
from kvmtui.lab.handle import LabHandle

# A stand-in for QEMU (no real part can run as cheaply): a Python process whose argv[0] says
# qemu-system-x86_64, whose command line carries -name guest=..., and which holds a real tap.
HOLDER = r"""
import fcntl, os, struct, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"kvctap0", 0x0002 | 0x1000))  # TUNSETIFF TAP|NO_PI
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder() -> Iterator[tuple[int, str]]:
    ns = f"kvC-pr{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    p = subprocess.Popen(
        ["ip", "netns", "exec", ns, "bash", "-c",
         f'exec -a qemu-system-x86_64 {sys.executable} -c "$0" -name "$1"',
         HOLDER, "guest=kvC-fake,debug-threads=on"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield p.pid, ns
    finally:
        p.kill()
        p.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_guest_name_parsing() -> None:
    assert _guest_name(["qemu", "-name", "guest=web1,debug-threads=on"]) == "web1"
    assert _guest_name(["qemu", "-name", "plain"]) == "plain"
    assert _guest_name(["qemu", "-m", "64"]) is None


def test_vm_and_tap_owner_of_a_qemu_like_process(holder: tuple[int, str]) -> None:
    pid, ns = holder
    assert tap_names_of(pid) == ["kvctap0"]
    st = read_procs(ns)
    assert st.vm_pids == (("kvC-fake", pid),)
    assert st.tap_pids == (("kvctap0", pid),)
    assert st.problems == ()
    # a process in another namespace is not this host's: names are unique per namespace only
    other = read_procs(None)
    assert ("kvC-fake", pid) not in other.vm_pids


@pytest.mark.lab
@pytest.mark.qemu
def test_lab_qemu_taps(lab: LabHandle) -> None:
    if not lab.qemu:
        pytest.skip("the lab runs without QEMU guests (KVMTUI_LAB_QEMU=0)")
    from kvmtui.core.snapshot import read_host

    deadline = time.monotonic() + 30
    while True:
        snap = read_host(uri=lab.uri, netns=lab.host_ns)
        vms = [v for v in snap.vms if v.kind == "libvirt" and v.state == "running"]
        if len(vms) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    st = read_procs(lab.host_ns)
    taps = dict(st.tap_pids)
    for v in vms:
        tap = v.nics[0].tap
        assert tap is not None and taps.get(tap) == v.pid, (v.name, tap, taps)


PVE_HOLDER = r"""
import fcntl, os, struct, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"tap100i0", 0x0002 | 0x1000))
print("ready", flush=True)
time.sleep(60)
"""


def test_a_qemu_without_libvirt_is_a_vm_with_its_path() -> None:
    """A stand-in for Proxmox's QEMU (argv[0] kvm, qemu-server's -id/-name/-netdev/-device), its
    tap on a real bridge of a namespace; no libvirt at all: the VM, its NIC and its path come
    from the process and netlink only."""
    from kvmtui.core.netlink import read_netlink
    from kvmtui.core.snapshot import build_snapshot
    from kvmtui.core.virt import VirtState

    ns = f"kvC-pve{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    args = ["-id", "100", "-name", "web,debug-threads=on",
            "-netdev", "type=tap,id=net0,ifname=tap100i0,script=/var/lib/qemu-server/pve-bridge",
            "-device", "virtio-net-pci,mac=BC:24:11:00:01:00,netdev=net0,id=net0"]  # fmt: skip
    p = subprocess.Popen(
        ["ip", "netns", "exec", ns, "bash", "-c", f'exec -a kvm {sys.executable} -c "$0" "$@"',
         PVE_HOLDER, *args],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        up = [["link", "set", d, "up"] for d in ("lan0", "eno1", "tap100i0", "vmbr0")]
        for cmd in (["link", "add", "vmbr0", "type", "bridge"],
                    ["link", "add", "eno1", "type", "veth", "peer", "name", "lan0"],
                    ["link", "set", "eno1", "master", "vmbr0"],
                    ["link", "set", "tap100i0", "master", "vmbr0"], *up):  # fmt: skip
            subprocess.run(["ip", "-n", ns, *cmd], check=True)
        st = read_procs(ns)
        snap = build_snapshot(read_netlink(ns), VirtState(), procs=st)
        (vm,) = snap.vms
        assert (vm.name, vm.kind, vm.pid, vm.domain_id) == ("web", "qemu", p.pid, 100)
        assert [(n.mac, n.tap, n.bridge) for n in vm.nics] == [
            ("bc:24:11:00:01:00", "tap100i0", "vmbr0")
        ]
        (path,) = snap.paths
        assert [h.dev for h in path.hops] == ["tap100i0", "vmbr0", "eno1", None]
        assert path.mode == "bridge" and path.verdict.startswith("leaves through eno1")
    finally:
        p.kill()
        p.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
