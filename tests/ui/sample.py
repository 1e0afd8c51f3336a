"""A hand-built ``HostSnapshot`` shaped like the lab (kvmtui/lab/spec.py), and a fake source.

The UI tests hand ``KvmApp`` a :class:`FakeSource` over this snapshot. It is a stand-in for
``kvmtui.core.live.LiveHost`` where the test is about the UI, not the host: the snapshot is what
LiveHost would return for the lab (names, MACs and addresses from the spec), frozen so the
screens are reproducible. Everything that moves (counters, the clock) is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from kvmtui.capture.switchmodel import FdbEvent, PortCount, SwitchBatch, SwitchRow
from kvmtui.core.model import (
    Bridge,
    DhcpRange,
    Evidence,
    FdbEntry,
    Hop,
    HostSnapshot,
    Lease,
    Link,
    LinkStats,
    MacOwner,
    NetAddress,
    Network,
    NicPath,
    Port,
    Problem,
    Vm,
    VmNic,
)
from kvmtui.doctor.model import (
    Fact,
    Finding,
    HostDiagnosis,
    NicDiagnosis,
    VmDiagnosis,
    ranked,
    verdict_of,
)
from kvmtui.lab import spec
from kvmtui.lab.lessonmodel import Lesson

PREFIX = "kvdev-"
FROZEN_NOW = 1_764_000_000.0  # the fixed "now" of every sample screen
HOSTNAME = f"{PREFIX}host"

NAT_LIGHT = spec.lab_vm("nat-light")
BR_LIGHT = spec.lab_vm("br-light")
ISO_A = spec.lab_vm("iso-a")
ISO_B = spec.lab_vm("iso-b")
NAT_QEMU = spec.lab_vm("nat-qemu")
BR_QEMU = spec.lab_vm("br-qemu")

# libvirt names QEMU taps itself; in the lab the light VMs take vnet0-3 first
QEMU_TAPS = {NAT_QEMU.name: "vnet4", BR_QEMU.name: "vnet5"}
VIRBR0_MAC = "52:54:00:80:05:05"
VIRBR1_MAC = "52:54:00:3b:1e:7a"
BR0_MAC = "fe:54:00:aa:00:02"
ENS9_MAC = "02:00:0a:00:00:02"
WAN0_MAC = "02:00:c6:33:64:02"

IPS = {
    NAT_LIGHT.name: "192.168.122.10",
    NAT_QEMU.name: "192.168.122.148",
    ISO_A.name: "192.168.100.10",
    ISO_B.name: "192.168.100.11",
    BR_LIGHT.name: "10.0.0.120",
    BR_QEMU.name: "10.0.0.137",
}


def tap_of(name: str) -> str:
    vm = spec.lab_vm(name)
    return vm.tap or QEMU_TAPS[name]


def _port(name: str, vm_name: str | None, *, kind: str = "veth", peer: str | None = None) -> Port:
    if vm_name is not None:
        vm = spec.lab_vm(vm_name)
        kind = "veth" if vm.kind == "light" else "tap"
        peer = f"{PREFIX}{vm_name}" if vm.kind == "light" else None
        mac = vm.tap_mac
        owner = f"VM {vm_name}"
    else:
        mac = ENS9_MAC
        owner = "uplink"
    return Port(
        name=name,
        index=10 + len(name) + sum(map(ord, name)) % 50,
        kind=kind,  # type: ignore[arg-type]
        state="up",
        stp_state="forwarding",
        learning=True,
        flooding=True,
        mac=mac,
        owner=owner,
        vm=vm_name,
        peer_netns=peer,
    )


def _vm_fdb(vm_name: str, *, age: float) -> tuple[FdbEntry, ...]:
    vm = spec.lab_vm(vm_name)
    tap = tap_of(vm_name)
    ip = IPS[vm_name]
    source = "lease" if vm.network != spec.BR_NET else "neighbour"
    return (
        FdbEntry(
            vm.mac, tap, None, "learned", age, MacOwner("vm", vm_name, tap, ip, source)
        ),  # the guest's NIC, learned on its tap
        FdbEntry(vm.tap_mac, tap, None, "permanent", None, MacOwner("host", tap, tap)),
    )


def sample_snapshot(*, taken_at: float = FROZEN_NOW) -> HostSnapshot:
    virbr0 = Bridge(
        name=spec.NAT_BRIDGE,
        index=4,
        mac=VIRBR0_MAC,
        state="up",
        stp=True,
        forward_delay_s=2.0,
        addresses=(f"{spec.NAT_GATEWAY}/{spec.NAT_PREFIX}",),
        ports=(_port(tap_of("nat-light"), "nat-light"), _port(tap_of("nat-qemu"), "nat-qemu")),
        fdb=(
            *_vm_fdb("nat-light", age=1.5),
            *_vm_fdb("nat-qemu", age=12.0),
            FdbEntry(
                VIRBR0_MAC,
                spec.NAT_BRIDGE,
                None,
                "permanent",
                None,
                MacOwner(
                    "host", spec.NAT_BRIDGE, spec.NAT_BRIDGE, spec.NAT_GATEWAY, "host-address"
                ),
            ),
        ),
        networks=(spec.NAT_NET,),
    )
    virbr1 = Bridge(
        name=spec.ISO_BRIDGE,
        index=5,
        mac=VIRBR1_MAC,
        state="up",
        stp=True,
        forward_delay_s=2.0,
        addresses=(f"{spec.ISO_GATEWAY}/24",),
        ports=(_port(tap_of("iso-a"), "iso-a"), _port(tap_of("iso-b"), "iso-b")),
        fdb=(*_vm_fdb("iso-a", age=3.0), *_vm_fdb("iso-b", age=4.25)),
        networks=(spec.ISO_NET,),
    )
    br0 = Bridge(
        name=spec.BR_BRIDGE,
        index=6,
        mac=BR0_MAC,
        state="up",
        stp=False,
        forward_delay_s=15.0,
        addresses=(spec.BR_HOST_CIDR,),
        ports=(
            _port(spec.BR_NIC, None, kind="veth", peer=f"{PREFIX}{spec.NS_LAN}"),
            _port(tap_of("br-light"), "br-light"),
            _port(tap_of("br-qemu"), "br-qemu"),
        ),
        fdb=(
            FdbEntry(
                spec.LAN_ROUTER_MAC,
                spec.BR_NIC,
                None,
                "learned",
                0.75,
                MacOwner("neighbour", "router", spec.BR_NIC, spec.LAN_ROUTER_IP, "neighbour"),
            ),
            FdbEntry(
                ENS9_MAC,
                spec.BR_NIC,
                None,
                "permanent",
                None,
                MacOwner("host", spec.BR_NIC, spec.BR_NIC),
            ),
            *_vm_fdb("br-light", age=2.0),
            *_vm_fdb("br-qemu", age=30.0),
        ),
        networks=(spec.BR_NET,),
        uplinks=(spec.BR_NIC,),
    )
    bridges = (virbr0, virbr1, br0)
    links: list[Link] = [
        Link(1, "lo", "loopback", "unknown", "00:00:00:00:00:00", 65536),
        Link(
            2,
            spec.UPLINK,
            "veth",
            "up",
            WAN0_MAC,
            1500,
            peer_netns=f"{PREFIX}{spec.NS_INET}",
            addresses=(spec.UPLINK_CIDR,),
        ),
    ]
    for b in bridges:
        links.append(Link(b.index, b.name, "bridge", "up", b.mac, 1500, addresses=b.addresses))
        for p in b.ports:
            links.append(
                Link(
                    p.index,
                    p.name,
                    p.kind,
                    p.state,
                    p.mac,
                    1500,
                    master=b.name,
                    master_index=b.index,
                    peer_netns=p.peer_netns,
                )
            )

    def lease(vm_name: str, ttl: int) -> Lease:
        vm = spec.lab_vm(vm_name)
        return Lease(vm.mac, IPS[vm_name], 24, vm_name, int(taken_at) + ttl)

    networks = (
        Network(
            spec.NAT_NET,
            "9a1d3a44-0c6f-4c2e-9c55-1f0e2a000001",
            "nat",
            spec.NAT_BRIDGE,
            True,
            True,
            addresses=(NetAddress(spec.NAT_GATEWAY, 24, ranges=(DhcpRange(*spec.NAT_RANGE),)),),
            leases=(lease("nat-light", 3540), lease("nat-qemu", 2400)),
            nat_rule=True,
            nat_rule_evidence=f"MASQUERADE {spec.NAT_SUBNET} -> !{spec.NAT_SUBNET}",
            vms=("nat-light", "nat-qemu"),
        ),
        Network(
            spec.ISO_NET,
            "9a1d3a44-0c6f-4c2e-9c55-1f0e2a000002",
            "isolated",
            spec.ISO_BRIDGE,
            True,
            True,
            addresses=(NetAddress(spec.ISO_GATEWAY, 24, ranges=(DhcpRange(*spec.ISO_RANGE),)),),
            leases=(lease("iso-a", 3300), lease("iso-b", 125)),
            vms=("iso-a", "iso-b"),
        ),
        Network(
            spec.BR_NET,
            "9a1d3a44-0c6f-4c2e-9c55-1f0e2a000003",
            "bridge",
            spec.BR_BRIDGE,
            True,
            True,
            vms=("br-light", "br-qemu"),
        ),
    )

    def vm(name: str, *, dom_id: int | None = None) -> Vm:
        lab = spec.lab_vm(name)
        source = "neighbour" if lab.network == spec.BR_NET else "lease"
        nic = VmNic(
            lab.mac, "network", "virtio", lab.network, lab.bridge, tap_of(name), IPS[name], source
        )
        kind = "light" if lab.kind == "light" else "libvirt"
        uuid = f"00000000-0000-4000-8000-{sum(map(ord, name)):012d}"
        pid = 4000 + (dom_id or 0) if kind == "libvirt" else None
        return Vm(name, uuid, "running", (nic,), dom_id, pid, kind)  # type: ignore[arg-type]

    vms = (
        vm("nat-qemu", dom_id=1),
        vm("br-qemu", dom_id=2),
        vm("nat-light"),
        vm("br-light"),
        vm("iso-a"),
        vm("iso-b"),
    )
    return HostSnapshot(
        taken_at=taken_at,
        hostname=HOSTNAME,
        links=tuple(links),
        bridges=bridges,
        networks=networks,
        vms=vms,
        uplink=spec.UPLINK,
        ip_forward=True,
        libvirt_uri=spec.libvirt_uri(PREFIX),
        paths=tuple(sample_path(v.name) for v in vms),
    )


def sample_path(vm_name: str) -> NicPath:
    lab = spec.lab_vm(vm_name)
    tap = tap_of(vm_name)
    tap_hop = Hop(
        tap,
        "tap",
        (Evidence("port state", "forwarding", True), Evidence("FDB", f"{lab.mac} on {tap}", True)),
        True,
    )
    if lab.network == spec.NAT_NET:
        hops = (
            tap_hop,
            Hop(spec.NAT_BRIDGE, "bridge", (Evidence("gateway", spec.NAT_GATEWAY, True),), True),
            Hop(
                None,
                "nat",
                (Evidence("MASQUERADE", spec.NAT_SUBNET, True), Evidence("ip_forward", "1", True)),
                True,
            ),
            Hop(
                spec.UPLINK,
                "uplink",
                (Evidence("default route", f"via {spec.INTERNET_IP}", True),),
                True,
            ),
        )
        return NicPath(
            vm_name,
            lab.mac,
            "nat",
            hops,
            True,
            f"leaves through {spec.UPLINK}, source NATed to {spec.UPLINK_IP}",
        )
    if lab.network == spec.BR_NET:
        hops = (
            tap_hop,
            Hop(spec.BR_BRIDGE, "bridge", (Evidence("STP", "off", None),), True),
            Hop(
                spec.BR_NIC,
                "uplink",
                (
                    Evidence("port state", "forwarding", True),
                    Evidence("FDB", f"router {spec.LAN_ROUTER_MAC}", True),
                ),
                True,
            ),
            Hop(None, "lan", (Evidence("LAN router", spec.LAN_ROUTER_IP, True),), True),
        )
        return NicPath(
            vm_name,
            lab.mac,
            "bridge",
            hops,
            True,
            f"leaves through {spec.BR_NIC} unchanged (no NAT)",
        )
    hops = (
        tap_hop,
        Hop(spec.ISO_BRIDGE, "bridge", (Evidence("gateway", spec.ISO_GATEWAY, True),), True),
        Hop(None, "end", (Evidence("forward", "none (isolated)", False),), False),
    )
    return NicPath(vm_name, lab.mac, "isolated", hops, False, "no way out: isolated network")


def empty_snapshot() -> HostSnapshot:
    return HostSnapshot(taken_at=FROZEN_NOW, hostname=HOSTNAME)


def problem_snapshot() -> HostSnapshot:
    base = sample_snapshot()
    from dataclasses import replace

    return replace(
        base,
        vms=(),
        networks=(),
        paths=(),
        problems=(
            Problem("libvirt", "libvirtd unreachable at qemu:///system: reconnecting every 5 s"),
            Problem("netlink", "not root: FDB ages and bridge port details are hidden"),
        ),
    )


def fixed_counters(step: int = 0) -> dict[str, LinkStats]:
    """Counters that grow by a fixed amount per call, so rates are constant and known."""
    out: dict[str, LinkStats] = {}
    for i, name in enumerate(
        [
            "wan0",
            "virbr0",
            "virbr1",
            "br0",
            "ens9",
            *sorted(set(QEMU_TAPS.values())),
            "vnet0",
            "vnet1",
            "vnet2",
            "vnet3",
        ]
    ):
        rx = (i + 1) * 1000
        tx = (i + 1) * 250
        out[name] = LinkStats(rx_bytes=rx * step, tx_bytes=tx * step)
    return out


class FakeSource:
    """A ``SnapshotSource`` over fixed snapshots (mock: the UI tests are about the UI).

    ``updates`` are delivered by ``watch`` one after another, ``update_delay`` apart, then it
    blocks until stopped. ``counters`` grows by a fixed step per call.
    """

    def __init__(
        self,
        snapshot: HostSnapshot | None = None,
        *,
        updates: Sequence[HostSnapshot] = (),
        update_delay: float = 0.05,
        snapshot_delay: float = 0.0,
        fail: str | None = None,
    ) -> None:
        self._snap = snapshot if snapshot is not None else sample_snapshot()
        self._updates = list(updates)
        self._update_delay = update_delay
        self._snapshot_delay = snapshot_delay
        self._fail = fail
        self._step = 0
        self._lock = threading.Lock()
        self.closed = False
        self.release = threading.Event()  # tests may gate updates on this
        self.release.set()

    def snapshot(self) -> HostSnapshot:
        if self._snapshot_delay:
            threading.Event().wait(self._snapshot_delay)
        if self._fail:
            raise ConnectionError(self._fail)
        return self._snap

    def watch(self, on_snapshot: Callable[[HostSnapshot], None], stop: threading.Event) -> None:
        for snap in self._updates:
            while not self.release.wait(0.02):  # a held update never outlives the app
                if stop.is_set():
                    return
            if stop.wait(self._update_delay):
                return
            self._snap = snap
            on_snapshot(snap)
        stop.wait()

    def counters(self) -> Mapping[str, LinkStats]:
        with self._lock:
            self._step += 1
            return fixed_counters(self._step)

    def close(self) -> None:
        self.closed = True


# --- fakes of the doctor, the switch session and the lessons, built from their contracts ------
# (the UI tests are about the screens; the real modules are tested on the lab by their owners)


def sample_diagnosis(snap: HostSnapshot, *, broken_tap: str | None = None) -> HostDiagnosis:
    """Every NIC ok, except the one on ``broken_tap``: its tap is down (what `ip link set vnet0
    down` gives), with the DHCP lease it causes ranked below it."""
    vms = []
    for vm in snap.vms:
        nics = []
        for nic in vm.nics:
            findings: tuple[Finding, ...] = ()
            if broken_tap is not None and nic.tap == broken_tap:
                findings = ranked(
                    [
                        Finding(
                            "dhcp.no_lease", "warning", nic.network, "no DHCP lease for this MAC",
                            (Fact("no lease for " + nic.mac, "dnsmasq leases"),), None, rank=50,
                        ),
                        Finding(
                            "tap.down", "error", nic.tap, f"tap {nic.tap} is down",
                            (Fact(f"{nic.tap} operstate down", "netlink"),),
                            f"ip link set {nic.tap} up", rank=10,
                        ),
                    ]
                )  # fmt: skip
            nics.append(
                NicDiagnosis(vm.name, nic.mac, nic.network, nic.tap, verdict_of(findings), findings)
            )
        vms.append(VmDiagnosis(vm.name, tuple(nics)))
    return HostDiagnosis(snap.hostname, snap.taken_at, tuple(vms), (), ("watch: not asked",))


class FakeSwitch:
    """Stands in for ``kvmtui.capture.switch.SwitchSession`` (it needs capture sockets on a
    real bridge): hands out the given batches one per poll, then an idle running batch."""

    def __init__(self, batches: Sequence[SwitchBatch]) -> None:
        self.batches = list(batches)
        self.started = threading.Event()
        self.stopped = threading.Event()

    def __call__(self, bridge: Bridge, snap: HostSnapshot) -> FakeSwitch:
        self.bridge = bridge.name
        return self

    def start(self) -> None:
        self.started.set()

    def poll(self) -> SwitchBatch:
        return self.batches.pop(0) if self.batches else SwitchBatch()

    def stop(self) -> None:
        self.stopped.set()


def switch_batches(bridge: str = "virbr0") -> list[SwitchBatch]:
    a, b = "52:54:00:aa:01:01", "52:54:00:aa:01:03"
    t0 = 1_000_000_000
    first = SwitchBatch(
        rows=(
            SwitchRow(1, t0, "vnet0", ("vnet1", "virbr0"), "broadcast", a, "ff:ff:ff:ff:ff:ff",
                      "192.168.122.10", "192.168.122.11", "ARP", "who-has 192.168.122.11",
                      "broadcast: every other port"),
            SwitchRow(2, t0 + 2_000_000, "vnet1", ("vnet0",), "forward", b, a,
                      "192.168.122.11", "192.168.122.10", "ARP", "192.168.122.11 is-at " + b,
                      f"{a} learned on vnet0 0 s ago"),
        ),
        events=(FdbEvent(t0 + 1_000_000, "learned", a, "vnet0", f"learned {a} on vnet0"),),
        counts=(PortCount("vnet0", 1, 1, 0), PortCount("vnet1", 1, 1, 0)),
    )  # fmt: skip
    flood = SwitchBatch(
        rows=(
            SwitchRow(3, t0 + 5_000_000, "vnet0", ("vnet1",), "forward", a, b,
                      "192.168.122.10", "192.168.122.11", "UDP", "udp 9 -> 9",
                      f"{b} learned on vnet1 0 s ago"),
        ),
        counts=(PortCount("vnet0", 90001, 1, 0), PortCount("vnet1", 1, 90001, 0)),
        sampled=True,
    )  # fmt: skip
    return [first, flood]


def sample_lessons() -> tuple[Lesson, ...]:
    return (
        Lesson("mac-learning", "4", {"en": "MAC learning", "vi": "Học địa chỉ MAC"},
               {"en": "the bridge forwards a frame only to the port of its MAC",
                "vi": "bridge chỉ chuyển khung tới cổng có MAC đích"},
               {"en": "watch the first frames flood, later ones forward",
                "vi": "xem các khung đầu bị flood, sau đó được forward"},
               "switch", vm="nat-light", bridge="virbr0"),
        Lesson("host-only", "1.2", {"en": "Host-only network", "vi": "Mạng host-only"},
               {"en": "an isolated VM cannot reach the Internet",
                "vi": "VM cô lập không ra được Internet"},
               {"en": "the doctor says isolated by design", "vi": "doctor nói: cô lập có chủ ý"},
               "doctor", vm="iso-a"),
    )  # fmt: skip
