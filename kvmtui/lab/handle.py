"""A handle on a running lab, for tests and tools: names, the libvirt URI, commands, VM IPs.

The tests' session fixture ``lab`` (tests/conftest.py) returns one of these::

    def test_nat_vm_reaches_internet(lab: LabHandle) -> None:
        ip = lab.wait_ip("nat-light", timeout=60)          # light VM or QEMU guest
        cp = lab.run(lab.vm_ns("nat-light"), "busybox", "ping", "-c1", spec.INTERNET_IP)
        assert cp.returncode == 0
        with in_netns(lab.host_ns): ...                    # pyroute2 sockets in the host
        conn = libvirt.open(lab.uri)                       # the lab's own libvirtd
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from kvmtui.lab import spec
from kvmtui.lab.probe import vm_ip


@dataclass(frozen=True)
class LabHandle:
    """A lab that is up.

    prefix     name prefix of every namespace of the lab (``kvmtuit-`` in tests)
    host_ns    the KVM host's namespace (libvirtd, virbr0/virbr1/br0, the taps)
    uri        the lab libvirtd's URI (libvirt-python and virsh alike)
    state_dir  the lab's folder (logs, pid records, guest consoles)
    qemu       whether the QEMU guests (spec.QEMU_VMS) are part of this lab
    """

    prefix: str
    host_ns: str
    uri: str
    state_dir: str
    qemu: bool

    @classmethod
    def for_prefix(cls, prefix: str, qemu: bool) -> LabHandle:
        return cls(
            prefix=prefix,
            host_ns=spec.ns_name(prefix, spec.NS_HOST),
            uri=spec.libvirt_uri(prefix),
            state_dir=spec.state_dir(prefix),
            qemu=qemu,
        )

    def ns(self, suffix: str) -> str:
        """Full namespace name: ``lab.ns(spec.NS_LAN)`` -> ``kvmtuit-lan``."""
        return spec.ns_name(self.prefix, suffix)

    def vm_ns(self, vm_name: str) -> str:
        """The namespace of a light VM (QEMU guests have none: they are processes in host_ns)."""
        vm = spec.lab_vm(vm_name)
        if vm.kind != "light":
            raise ValueError(f"{vm_name} is a QEMU guest, it has no namespace of its own")
        return spec.ns_name(self.prefix, vm.name)

    @property
    def vms(self) -> tuple[spec.LabVm, ...]:
        return spec.LIGHT_VMS + (spec.QEMU_VMS if self.qemu else ())

    def run(
        self, ns: str, *cmd: str, timeout: float = 30.0, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` inside namespace ``ns`` (a full name, e.g. ``lab.host_ns``); text output."""
        return subprocess.run(
            ["ip", "netns", "exec", ns, *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            stdin=subprocess.DEVNULL,
        )

    def wait_ip(self, vm_name: str, timeout: float = 60.0) -> str:
        """The VM's IPv4 address once it has a lease (light VM: eth0 in its namespace; QEMU
        guest: the lease line its /init printed on the serial console). TimeoutError if none."""
        vm = spec.lab_vm(vm_name)
        deadline = time.monotonic() + timeout
        while True:
            ip = vm_ip(self.prefix, vm)
            if ip:
                return ip
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{vm_name} has no IPv4 address after {timeout:.0f} s")
            time.sleep(0.3)

    def console_log(self, vm_name: str) -> str:
        """A QEMU guest's serial console so far ('' when none)."""
        try:
            with open(f"{self.state_dir}/qemu/{vm_name}.console.log", errors="replace") as f:
                return f.read()
        except OSError:
            return ""
