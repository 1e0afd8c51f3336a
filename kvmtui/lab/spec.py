"""What the built-in lab builds: names, addresses and MACs, as data.

The lab reproduces the seed's networks inside network namespaces that all start with one prefix
(``kvmtui-`` for the demo, ``kvmtuit-`` for the tests). Tests, the UI's demo and the docs read
these constants instead of repeating literals. Interface names live inside the lab's namespaces,
so they do not need the prefix (and must stay <= 15 characters).

    {prefix}inet    198.51.100.1/24 on eth0, the fake Internet (ping, HTTP on :80)
    {prefix}host    the KVM host: wan0 198.51.100.2/24 (default route via .1), libvirtd,
                    virbr0 (NAT "default"), virbr1 (isolated "hostonly"), br0 + ens9 ("bridged")
    {prefix}lan     the LAN behind ens9: eth0 10.0.0.1/24, router + dnsmasq 10.0.0.100-200
    {prefix}<vm>    one namespace per light VM: eth0 (guest MAC) <-> vnetN on a host bridge
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

INTERNET_IP = "198.51.100.1"
INTERNET_CIDR = "198.51.100.1/24"
UPLINK = "wan0"
UPLINK_IP = "198.51.100.2"
UPLINK_CIDR = "198.51.100.2/24"
INTERNET_DEV = "eth0"

NAT_NET = "default"
NAT_BRIDGE = "virbr0"
NAT_GATEWAY = "192.168.122.1"
NAT_PREFIX = 24
NAT_RANGE = ("192.168.122.2", "192.168.122.254")
NAT_SUBNET = "192.168.122.0/24"

ISO_NET = "hostonly"
ISO_BRIDGE = "virbr1"
ISO_GATEWAY = "192.168.100.1"
ISO_RANGE = ("192.168.100.2", "192.168.100.254")
ISO_SUBNET = "192.168.100.0/24"

BR_NET = "bridged"
BR_BRIDGE = "br0"
BR_HOST_IP = "10.0.0.2"
BR_HOST_CIDR = "10.0.0.2/24"
BR_NIC = "ens9"  # the physical-NIC stand-in, a veth whose peer is in the LAN namespace
LAN_ROUTER_IP = "10.0.0.1"
LAN_DEV = "eth0"
LAN_ROUTER_MAC = "02:00:0a:00:00:01"
LAN_RANGE = ("10.0.0.100", "10.0.0.200")
LAN_SUBNET = "10.0.0.0/24"
# the LAN router's own uplink to the fake Internet (the host is not in the bridged VMs' path)
LAN_UPLINK = "wan0"
LAN_UPLINK_IP = "198.51.100.3"
LAN_UPLINK_CIDR = "198.51.100.3/24"
INTERNET_LAN_DEV = "eth1"  # the fake Internet's end of that uplink

# namespace suffixes (the full name is prefix + suffix)
NS_INET = "inet"
NS_HOST = "host"
NS_LAN = "lan"

VmKind = Literal["light", "qemu"]


@dataclass(frozen=True, slots=True)
class LabVm:
    """A VM of the lab. Light VMs are namespaces; QEMU guests are libvirt domains (TCG)."""

    name: str
    kind: VmKind
    network: str  # libvirt network name
    bridge: str
    mac: str  # the guest's MAC (52:54:00:...)
    tap: str | None  # host end name for light VMs; QEMU taps are named by libvirt (vnetN)
    target: str  # what it keeps pinging

    @property
    def tap_mac(self) -> str:
        """Host end MAC, as libvirt does for taps: fe + the guest MAC's last five bytes."""
        return "fe" + self.mac[2:]


LIGHT_VMS: tuple[LabVm, ...] = (
    LabVm("nat-light", "light", NAT_NET, NAT_BRIDGE, "52:54:00:aa:01:01", "vnet0", INTERNET_IP),
    LabVm("br-light", "light", BR_NET, BR_BRIDGE, "52:54:00:aa:01:02", "vnet1", INTERNET_IP),
    LabVm("iso-a", "light", ISO_NET, ISO_BRIDGE, "52:54:00:aa:01:03", "vnet2", ISO_GATEWAY),
    LabVm("iso-b", "light", ISO_NET, ISO_BRIDGE, "52:54:00:aa:01:04", "vnet3", ISO_GATEWAY),
)

QEMU_VMS: tuple[LabVm, ...] = (
    LabVm("nat-qemu", "qemu", NAT_NET, NAT_BRIDGE, "52:54:00:aa:00:01", None, INTERNET_IP),
    LabVm("br-qemu", "qemu", BR_NET, BR_BRIDGE, "52:54:00:aa:00:02", None, INTERNET_IP),
)

ALL_VMS: tuple[LabVm, ...] = LIGHT_VMS + QEMU_VMS


def lab_vm(name: str) -> LabVm:
    for vm in ALL_VMS:
        if vm.name == name:
            return vm
    raise KeyError(name)


def ns_name(prefix: str, suffix: str) -> str:
    return f"{prefix}{suffix}"


def state_dir(prefix: str) -> str:
    """Everything the lab writes on disk lives under this folder (removed by ``lab down``)."""
    return f"/var/lib/kvmtui-lab/{prefix.rstrip('-') or 'lab'}"


def libvirt_uri(prefix: str) -> str:
    """The URI of the lab's own libvirtd (its socket is in the lab's folder)."""
    return f"qemu:///system?socket={state_dir(prefix)}/run/libvirt/libvirt-sock"
