"""The host model: immutable snapshots that cross threads.

Every reader in :mod:`kvmtui.core` returns these frozen dataclasses; the UI and the JSON CLI are
both clients of them. Nothing here imports Textual (a test checks it).

Conventions:
- MAC addresses are lower-case ``aa:bb:cc:dd:ee:ff``.
- IP addresses are strings; interface addresses carry their prefix (``192.168.122.1/24``).
- Times are seconds: ``age_s`` is how long ago, ``expiry`` is a Unix epoch.
- Every tuple is a tuple (never a list) so snapshots stay hashable and immutable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# --- link layer ------------------------------------------------------------------------------

LinkKind = Literal[
    "bridge", "tap", "tun", "veth", "physical", "macvtap", "macvlan", "vlan", "bond",
    "loopback", "dummy", "other",
]  # fmt: skip


MacvlanMode = Literal["private", "vepa", "bridge", "passthru", "source"]
# IFLA_MACVLAN_MODE values (linux/if_link.h: MACVLAN_MODE_PRIVATE = 1, VEPA = 2, BRIDGE = 4, ...)
MACVLAN_MODES: dict[int, MacvlanMode] = {
    1: "private", 2: "vepa", 4: "bridge", 8: "passthru", 16: "source",
}  # fmt: skip
# IFLA_BOND_MODE values (linux/if_bonding.h: BOND_MODE_ROUNDROBIN = 0 ... BOND_MODE_ALB = 6)
BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb",
              "balance-alb")  # fmt: skip


@dataclass(frozen=True, slots=True)
class LinkStats:
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """One network interface of the namespace the model reads."""

    index: int
    name: str
    kind: LinkKind
    state: str  # operstate, lower case: up, down, unknown, lowerlayerdown, dormant
    mac: str
    mtu: int
    master: str | None = None  # name of the bridge/bond this link is enslaved to
    master_index: int | None = None
    # veth / macvtap / vlan: the link this one is paired with or stacked on. For a veth whose
    # peer lives in another namespace, ``peer_netns_id`` is set (IFLA_LINK_NETNSID) and
    # ``peer_index`` is an ifindex *in that namespace*: never resolve it here.
    peer_index: int | None = None
    peer_netns_id: int | None = None
    peer_netns: str | None = None  # the namespace's name when it can be resolved
    addresses: tuple[str, ...] = ()  # "192.168.122.1/24", "fe80::1/64"
    stats: LinkStats = field(default_factory=LinkStats)
    flags_promisc: bool = False
    # the device a macvtap/macvlan/vlan link is stacked on (IFLA_LINK, same namespace), by name
    lower: str | None = None
    macvlan_mode: MacvlanMode | None = None  # macvtap/macvlan: IFLA_MACVLAN_MODE
    vlan_id: int | None = None  # a vlan link: IFLA_VLAN_ID
    bond_mode: str | None = None  # a bond: IFLA_BOND_MODE by its name ("802.3ad", ...)
    bond_members: tuple[str, ...] = ()  # a bond: the links whose IFLA_MASTER it is
    vlan_filtering: bool | None = None  # a bridge: IFLA_BR_VLAN_FILTERING (None: not reported)


@dataclass(frozen=True, slots=True)
class PortVlan:
    """One VLAN of a bridge port (or of the bridge itself, its host side) on a VLAN-aware bridge:
    IFLA_BRIDGE_VLAN_INFO of the AF_BRIDGE link dump. ``pvid``: untagged frames that come in on
    the port join this VLAN; ``untagged``: frames of this VLAN leave the port without a tag."""

    vid: int
    pvid: bool = False
    untagged: bool = False


def pvid_of(vlans: tuple[PortVlan, ...]) -> int | None:
    return next((v.vid for v in vlans if v.pvid), None)


StpState = Literal["disabled", "listening", "learning", "forwarding", "blocking", "unknown"]


@dataclass(frozen=True, slots=True)
class BridgePortInfo:
    """Per-port bridge attributes (IFLA_PROTINFO / IFLA_BRPORT_*), where the kernel reports them."""

    stp_state: StpState = "unknown"
    learning: bool | None = None
    flooding: bool | None = None  # unicast flood
    priority: int | None = None
    cost: int | None = None


FdbKind = Literal["learned", "static", "permanent"]


@dataclass(frozen=True, slots=True)
class FdbRecord:
    """A raw FDB entry as the kernel dumps it (before owners are resolved)."""

    mac: str
    port_index: int
    port: str
    bridge: str
    vlan: int | None
    kind: FdbKind
    age_s: float | None  # seconds since last used/updated (NDA_CACHEINFO), None if unknown


@dataclass(frozen=True, slots=True)
class Neighbour:
    ip: str
    mac: str
    dev: str
    state: str  # reachable, stale, delay, probe, failed, noarp, permanent, incomplete


@dataclass(frozen=True, slots=True)
class Route:
    dst: str  # "default" or "10.0.0.0/24"
    dev: str | None
    gateway: str | None = None
    table: int = 254
    prefsrc: str | None = None


@dataclass(frozen=True, slots=True)
class NetlinkState:
    """What the netlink reader returns for one namespace."""

    links: tuple[Link, ...] = ()
    bridge_ports: tuple[tuple[str, BridgePortInfo], ...] = ()  # (port name, info)
    bridge_stp: tuple[tuple[str, bool, float | None], ...] = ()  # (bridge, stp on, fwd delay s)
    # (port or bridge name, its VLANs) from the AF_BRIDGE dump; empty without VLAN filtering
    bridge_vlans: tuple[tuple[str, tuple[PortVlan, ...]], ...] = ()
    fdb: tuple[FdbRecord, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    routes: tuple[Route, ...] = ()
    ip_forward: bool | None = None


# --- libvirt ---------------------------------------------------------------------------------

NetMode = Literal[
    "nat", "route", "open", "isolated", "bridge", "private", "vepa", "passthrough", "hostdev",
    "macvtap", "unknown",
]  # fmt: skip

# The mode sets, defined here once (paths, the doctor, capture and the UI use these):
# a NIC stacked straight on a host NIC (macvtap), with libvirt's names for its modes
MACVTAP_MODES: tuple[str, ...] = ("private", "vepa", "passthrough", "direct", "macvtap")
ROUTED_MODES: tuple[str, ...] = ("nat", "route", "open")  # the host routes the VM's packets
DHCP_MODES: tuple[str, ...] = (*ROUTED_MODES, "isolated")  # libvirt's dnsmasq serves the bridge
L2_MODES: tuple[str, ...] = ("bridge", *MACVTAP_MODES)  # frames leave the host as they are
# domain states in which a QEMU process holds the VM's NICs (so there is a path to show)
RUNNING_STATES: tuple[str, ...] = ("running", "paused", "blocked", "pmsuspended")


@dataclass(frozen=True, slots=True)
class DhcpRange:
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class DhcpHost:
    mac: str | None
    ip: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class NetAddress:
    """An <ip> element of a libvirt network."""

    address: str
    prefix: int
    family: str = "ipv4"
    ranges: tuple[DhcpRange, ...] = ()
    hosts: tuple[DhcpHost, ...] = ()


@dataclass(frozen=True, slots=True)
class Lease:
    mac: str
    ip: str
    prefix: int | None = None
    hostname: str | None = None
    expiry: int | None = None  # Unix epoch seconds
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Network:
    name: str
    uuid: str
    mode: NetMode
    bridge: str | None
    active: bool
    autostart: bool
    addresses: tuple[NetAddress, ...] = ()
    leases: tuple[Lease, ...] = ()
    forward_dev: str | None = None  # <forward dev='...'> if any
    nat_rule: bool | None = None  # MASQUERADE/SNAT covering the subnet seen (None: not checked)
    nat_rule_evidence: str | None = None
    vms: tuple[str, ...] = ()  # names of domains with a NIC on this network


IpSource = Literal[
    "lease", "static-dhcp", "neighbour", "agent", "host-address", "wire", "none"
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class VmNic:
    mac: str
    type: str  # network, bridge, direct, user, ...
    model: str | None = None
    network: str | None = None
    bridge: str | None = None  # the bridge the tap is on (from libvirt or netlink)
    tap: str | None = None  # target dev, e.g. vnet3
    ip: str | None = None
    ip_source: IpSource = "none"
    ip_seen_at: float | None = None  # ip_source "wire": when (time.time()) it was last seen


VmKind = Literal["libvirt", "light", "qemu"]


@dataclass(frozen=True, slots=True)
class Vm:
    name: str
    uuid: str
    state: str  # running, paused, shut off, crashed, pmsuspended, blocked, shutdown, unknown
    nics: tuple[VmNic, ...] = ()
    domain_id: int | None = None
    pid: int | None = None  # the QEMU process
    # libvirt: a domain; light: a network namespace; qemu: a QEMU process no libvirt knows
    # (Proxmox's qemu-server, a hand-started QEMU), with the NICs its command line names
    kind: VmKind = "libvirt"


# --- resolved view ---------------------------------------------------------------------------

OwnerKind = Literal["vm", "host", "lease", "neighbour", "unknown"]


@dataclass(frozen=True, slots=True)
class MacOwner:
    """Who is behind a MAC address, and how we know."""

    kind: OwnerKind
    name: str  # VM name, host device name, lease hostname, or "" when unknown
    nic: str | None = None  # VM NIC's tap, or the host device
    ip: str | None = None
    ip_source: IpSource = "none"

    def label(self) -> str:
        if self.kind == "vm":
            return f"VM {self.name}" + (f" ({self.nic})" if self.nic else "")
        if self.kind == "host":
            return f"host {self.name}"
        if self.kind == "lease":
            return f"DHCP client {self.name}" if self.name else "DHCP client"
        if self.kind == "neighbour":
            return "LAN neighbour" + (f" {self.name}" if self.name else "")
        return "unknown"


@dataclass(frozen=True, slots=True)
class FdbEntry:
    mac: str
    port: str
    vlan: int | None
    kind: FdbKind
    age_s: float | None
    owner: MacOwner


@dataclass(frozen=True, slots=True)
class Port:
    name: str
    index: int
    kind: LinkKind
    state: str  # operstate
    stp_state: StpState = "unknown"
    learning: bool | None = None
    flooding: bool | None = None
    mac: str = ""
    owner: str | None = None  # "VM web1", "veth -> netns kvmtui-lan", "uplink"
    vm: str | None = None
    peer_netns: str | None = None
    vlans: tuple[PortVlan, ...] = ()  # on a VLAN-aware bridge: the port's VLANs

    @property
    def pvid(self) -> int | None:
        return pvid_of(self.vlans)


@dataclass(frozen=True, slots=True)
class Bridge:
    name: str
    index: int
    mac: str
    state: str
    stp: bool = False
    forward_delay_s: float | None = None
    addresses: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    fdb: tuple[FdbEntry, ...] = ()
    networks: tuple[str, ...] = ()  # libvirt networks on this bridge
    uplinks: tuple[str, ...] = ()  # ports that lead off the host (physical, bond, vlan, veth)
    vlan_filtering: bool | None = None  # VLAN-aware (IFLA_BR_VLAN_FILTERING); None: not reported
    vlans: tuple[PortVlan, ...] = ()  # the bridge's own VLANs (its host side: "bridge vlan self")


HopRole = Literal["tap", "bridge", "uplink", "nat", "route", "lan", "end", "macvtap", "veth"]


@dataclass(frozen=True, slots=True)
class Evidence:
    what: str  # "port state", "FDB", "MASQUERADE", "ip_forward", ...
    value: str
    ok: bool | None = None  # True good, False a problem, None neutral


@dataclass(frozen=True, slots=True)
class Hop:
    dev: str | None  # None for a conceptual hop (NAT, "no way out")
    role: HopRole
    evidence: tuple[Evidence, ...] = ()
    ok: bool | None = None
    vlan: int | None = None  # on a VLAN-aware bridge: the VLAN the VM's frames are in here
    tagged: bool | None = None  # ... and whether they carry its tag on this device


@dataclass(frozen=True, slots=True)
class NicPath:
    vm: str
    mac: str
    mode: NetMode | Literal["direct", "unknown"]
    hops: tuple[Hop, ...]
    way_out: bool  # can the packet leave the host?
    verdict: str  # one plain line: "leaves through ens9 unchanged", "no way out: isolated"
    notes: tuple[str, ...] = ()  # rules of this kind of path a user should know (macvtap, ...)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the model could not read, in one line a user can act on."""

    source: Literal["netlink", "libvirt", "firewall", "conntrack", "processes", "capture"]
    message: str


@dataclass(frozen=True, slots=True, repr=False)
class HostSnapshot:
    taken_at: float  # time.time()
    hostname: str
    links: tuple[Link, ...] = ()
    bridges: tuple[Bridge, ...] = ()
    networks: tuple[Network, ...] = ()
    vms: tuple[Vm, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    routes: tuple[Route, ...] = ()
    uplink: str | None = None  # device of the default route
    ip_forward: bool | None = None
    libvirt_uri: str | None = None
    problems: tuple[Problem, ...] = ()
    paths: tuple[NicPath, ...] = ()

    def __repr__(self) -> str:
        """A summary, not the whole host: Textual's ``@work`` names a worker by the repr of
        its arguments, and the generated repr of a snapshot with 50,000 FDB entries took
        ~80 ms of the UI thread for every snapshot handed to the doctor worker."""
        fdb = sum(len(b.fdb) for b in self.bridges)
        return (
            f"HostSnapshot(hostname={self.hostname!r}, taken_at={self.taken_at!r}, "
            f"links={len(self.links)}, bridges={len(self.bridges)}, fdb={fdb}, "
            f"vms={len(self.vms)}, networks={len(self.networks)}, "
            f"problems={len(self.problems)})"
        )

    def bridge(self, name: str) -> Bridge | None:
        return next((b for b in self.bridges if b.name == name), None)

    def network(self, name: str) -> Network | None:
        return next((n for n in self.networks if n.name == name), None)

    def vm(self, name: str) -> Vm | None:
        return next((v for v in self.vms if v.name == name), None)

    def link(self, name: str) -> Link | None:
        return next((lk for lk in self.links if lk.name == name), None)

    def paths_of(self, vm: str) -> tuple[NicPath, ...]:
        return tuple(p for p in self.paths if p.vm == vm)
