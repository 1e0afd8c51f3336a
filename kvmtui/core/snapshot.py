"""The join: netlink + libvirt + processes + firewall -> one immutable ``HostSnapshot``.

``build_snapshot`` is pure (tests hand it built states); ``read_host`` does the reading.

Rules the join applies:

- **Namespace guests ("light VMs")**: a bridge port that is a veth whose peer lives in a *named*
  network namespace is shown as a VM of kind ``light`` named after that namespace, with one NIC
  (type ``veth``) whose MAC is the peer's MAC read inside that namespace. Exception: a port
  whose name looks like a physical NIC (``en*``, ``eth*``, ``em*``, ``wl*``, ``pNpN``,
  ``bond*``) is a physical stand-in and counts as the bridge's uplink (the lab's ``ens9``).
- **Bridge uplinks**: ports of kind physical, bond or vlan, and physical-looking veths.
- **MAC owners**, first match wins: a VM NIC (libvirt domain or namespace guest) -> a host
  device (a link's own MAC: virbr0, a tap's fe:54:... MAC) -> a DHCP lease (its hostname) ->
  the neighbour table (e.g. the LAN router behind ens9) -> unknown.
- **IP of a VM NIC**, with its source: libvirt lease, static DHCP host, neighbour table (so a
  bridged VM gets its LAN address once the host has seen it), guest agent, none.
"""

from __future__ import annotations

import functools
import gc
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from itertools import compress, repeat
from operator import attrgetter, is_
from typing import ParamSpec

from kvmtui.core.firewall import FirewallState
from kvmtui.core.model import (
    Bridge,
    BridgePortInfo,
    FdbEntry,
    FdbRecord,
    HostSnapshot,
    IpSource,
    Link,
    MacOwner,
    NetlinkState,
    Network,
    Port,
    PortVlan,
    Problem,
    Vm,
    VmNic,
)
from kvmtui.core.paths import compute_paths
from kvmtui.core.procs import ProcState
from kvmtui.core.virt import VirtState

PHYSICAL_NAME = re.compile(r"^(en|eth|em|wl|bond)|^p\d+p\d+")
UPLINK_KINDS = ("physical", "bond", "vlan")

P = ParamSpec("P")


def looks_physical(name: str) -> bool:
    return bool(PHYSICAL_NAME.match(name))


_TAP_NAME = re.compile(r"^(vnet|tap)\d")


def is_namespace_guest_port(link: Link) -> bool:
    """A veth whose peer lives in a named namespace, on a bridge: a namespace guest. One named
    like a tap (vnetN, tapN) stays a guest when it is on no bridge (it was taken off one)."""
    return (
        link.kind == "veth"
        and (link.master is not None or bool(_TAP_NAME.match(link.name)))
        and link.peer_netns is not None
        and not looks_physical(link.name)
    )


def is_uplink_port(link: Link) -> bool:
    return link.kind in UPLINK_KINDS or (link.kind == "veth" and looks_physical(link.name))


def _v4(addrs: Sequence[str]) -> str | None:
    for a in addrs:
        if ":" not in a:
            return a.split("/")[0]
    return None


def _neigh_ip(nl: NetlinkState, mac: str, dev: str | None = None) -> str | None:
    """An IPv4 address the neighbour table maps to ``mac`` (usable states only)."""
    best: str | None = None
    for n in nl.neighbours:
        if n.mac != mac or ":" in n.ip or n.state in ("failed", "incomplete"):
            continue
        if dev is not None and n.dev == dev:
            return n.ip
        best = best or n.ip
    return best


class FdbCache:
    """Reuse of resolved FDB entries between snapshots of one host (``LiveHost``): a record
    object seen before, with the same owner tables and links, maps to the same ``FdbEntry``.
    An FDB change patched into a 50,000-entry table then costs a lookup per entry instead of
    a resolution. Entries are keyed by the record's id(); ``records`` holds those records, so
    no other object can have a cached id."""

    def __init__(self) -> None:
        self.entries: dict[int, FdbEntry] = {}
        self.records: tuple[FdbRecord, ...] = ()  # keeps the records of ``entries`` alive
        self.resolved: dict[str, MacOwner] = {}
        self.link_sig: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def _gc_paused(build: Callable[P, HostSnapshot]) -> Callable[P, HostSnapshot]:
    """The join allocates ~100k objects on a big host; the cyclic GC walking the previous
    snapshots meanwhile doubled its time. Nothing in the join makes cycles: pause it."""

    @functools.wraps(build)
    def run(*args: P.args, **kwargs: P.kwargs) -> HostSnapshot:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return build(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return run


# --- the join, step by step ------------------------------------------------------------------


def _default_dev(nl: NetlinkState) -> str | None:
    return next(
        (r.dev for r in nl.routes if r.dst in ("default", "0.0.0.0/0") and r.table in (254, 0)),
        None,
    )


def _networks_with_nat(virt: VirtState, firewall: FirewallState | None) -> list[Network]:
    """libvirt's networks, each NAT network with whether a MASQUERADE rule covers its subnet."""
    networks: list[Network] = []
    for net in virt.networks:
        if firewall is not None and net.mode == "nat":
            subnet = next(
                (
                    str(ipaddress.ip_network(f"{a.address}/{a.prefix}", strict=False))
                    for a in net.addresses
                    if a.family == "ipv4"
                ),
                None,
            )
            if subnet is not None:
                ok, ev = firewall.nat_for(subnet)
                net = replace(net, nat_rule=ok, nat_rule_evidence=ev)
        networks.append(net)
    return networks


class _Join:
    """The lookups every step of the join shares (one snapshot's worth, built once)."""

    def __init__(self, nl: NetlinkState, virt: VirtState, networks: list[Network]) -> None:
        self.nl = nl
        self.by_name = {lk.name: lk for lk in nl.links}
        self.by_index = {lk.index: lk for lk in nl.links}
        self.net_by_name = {n.name: n for n in networks}
        self.net_by_bridge = {n.bridge: n for n in networks if n.bridge}
        self.leases = {lease.mac: lease for n in networks for lease in n.leases}
        self.statics = {h.mac: h for n in networks for a in n.addresses for h in a.hosts if h.mac}
        self.agent = dict(virt.agent_ips)

    def resolve_ip(self, mac: str, bridge: str | None) -> tuple[str | None, IpSource]:
        """A VM NIC's IP and its source: lease, static DHCP host, neighbour table, agent."""
        if mac in self.leases:
            return self.leases[mac].ip, "lease"
        if mac in self.statics:
            return self.statics[mac].ip, "static-dhcp"
        ip = _neigh_ip(self.nl, mac, bridge)
        if ip:
            return ip, "neighbour"
        if mac in self.agent:
            return self.agent[mac], "agent"
        return None, "none"

    def network_of_bridge(self, bridge: str | None) -> str | None:
        n = self.net_by_bridge.get(bridge or "")
        return n.name if n else None


def _libvirt_vms(j: _Join, virt: VirtState, procs: ProcState | None) -> list[Vm]:
    """libvirt's domains, each NIC on the bridge its tap is on and with its IP; the QEMU pid
    from the command line's name or from the process holding a tap."""
    vm_pids = dict(procs.vm_pids) if procs else {}
    tap_pids = dict(procs.tap_pids) if procs else {}
    vms: list[Vm] = []
    for dom in virt.domains:
        nics: list[VmNic] = []
        for nic in dom.nics:
            bridge = nic.bridge
            tap_link = j.by_name.get(nic.tap) if nic.tap else None
            if tap_link is not None and tap_link.master:
                bridge = tap_link.master
            elif bridge is None and nic.network in j.net_by_name:
                bridge = j.net_by_name[nic.network].bridge
            network = nic.network or j.network_of_bridge(bridge)
            ip, src = j.resolve_ip(nic.mac, bridge)
            nics.append(replace(nic, bridge=bridge, network=network, ip=ip, ip_source=src))
        pid = vm_pids.get(dom.name)
        if pid is None:
            pid = next((tap_pids[n.tap] for n in dom.nics if n.tap and n.tap in tap_pids), None)
        vms.append(replace(dom, nics=tuple(nics), pid=pid if dom.state == "running" else None))
    return vms


def _qemu_vms(j: _Join, procs: ProcState | None, known: set[str], taps_used: set[str]) -> list[Vm]:
    """QEMU processes no libvirt domain stands for (Proxmox, a hand-started QEMU): a VM of kind
    ``qemu`` each, its NICs from the command line, a NIC whose tap came by fd (no ifname) given
    the one tap the process holds that no other NIC names."""
    if procs is None:
        return []
    held: dict[int, list[str]] = {}
    for tap_name, pid in procs.tap_pids:
        held.setdefault(pid, []).append(tap_name)
    vms: list[Vm] = []
    for q in procs.qemu:
        if q.name in known:
            continue
        named = {n.tap for n in q.nics if n.tap}
        spare = [t for t in held.get(q.pid, ()) if t not in named]
        unnamed = [n for n in q.nics if not n.tap]
        nics: list[VmNic] = []
        for qn in q.nics:
            tap = qn.tap
            if tap is None and len(spare) == 1 and len(unnamed) == 1:
                tap = spare[0]
            if tap in taps_used:
                continue
            lk = j.by_name.get(tap) if tap else None
            bridge = lk.master if lk is not None else None
            ip, src = j.resolve_ip(qn.mac, bridge)
            nics.append(
                VmNic(
                    mac=qn.mac,
                    type="bridge" if bridge else "ethernet",
                    model=qn.model,
                    network=j.network_of_bridge(bridge),
                    bridge=bridge,
                    tap=tap,
                    ip=ip,
                    ip_source=src,
                )
            )
        vms.append(Vm(q.name, "", "running", tuple(nics), domain_id=q.vmid, pid=q.pid, kind="qemu"))
    return vms


def _light_vms(j: _Join, guest_macs: Mapping[str, str], taps_used: set[str]) -> list[Vm]:
    """Namespace guests: a veth on a bridge whose peer lives in a named namespace."""
    light: dict[str, list[VmNic]] = {}
    for lk in j.nl.links:
        if not is_namespace_guest_port(lk) or lk.name in taps_used:
            continue
        assert lk.peer_netns is not None
        mac = guest_macs.get(lk.name, "")
        ip, src = j.resolve_ip(mac, lk.master) if mac else (None, "none")
        light.setdefault(lk.peer_netns, []).append(
            VmNic(
                mac=mac,
                type="veth",
                network=j.network_of_bridge(lk.master),
                bridge=lk.master,
                tap=lk.name,
                ip=ip,
                ip_source=src,
            )
        )
    return [
        Vm(name=ns, uuid="", state="running", nics=tuple(nics), kind="light")
        for ns, nics in sorted(light.items())
    ]


def _all_vms(
    j: _Join, virt: VirtState, procs: ProcState | None, guest_macs: Mapping[str, str]
) -> list[Vm]:
    vms = _libvirt_vms(j, virt, procs)
    taps_used = {n.tap for vm in vms for n in vm.nics if n.tap}
    qemu = _qemu_vms(j, procs, {d.name for d in virt.domains}, taps_used)
    taps_used.update(n.tap for vm in qemu for n in vm.nics if n.tap)
    vms += qemu + _light_vms(j, guest_macs, taps_used)
    vms.sort(key=lambda v: (v.kind != "libvirt", v.name))
    return vms


def _networks_with_vms(networks: list[Network], vms: list[Vm]) -> list[Network]:
    """Each network with the VMs that have a NIC on it (domains and namespace guests)."""
    on_net: dict[str, list[str]] = {}
    for vm in vms:
        for nic in vm.nics:
            if nic.network and vm.name not in on_net.setdefault(nic.network, []):
                on_net[nic.network].append(vm.name)
    return [replace(n, vms=tuple(on_net.get(n.name, ()))) for n in networks]


def _owner_table(j: _Join, vms: list[Vm]) -> tuple[dict[str, MacOwner], dict[str, MacOwner]]:
    """``(resolved, host_owner)``: MAC -> owner with the first-match-wins order of the module
    docstring already applied, and MAC -> the host device that has it."""
    owners: dict[str, MacOwner] = {}
    for vm in vms:
        for nic in vm.nics:
            if nic.mac and nic.mac not in owners:
                owners[nic.mac] = MacOwner("vm", vm.name, nic.tap, nic.ip, nic.ip_source)
    host_owner: dict[str, MacOwner] = {}
    for lk in j.nl.links:
        if lk.mac and lk.mac != "00:00:00:00:00:00" and lk.mac not in host_owner:
            ip = _v4(lk.addresses)
            host_owner[lk.mac] = MacOwner(
                "host", lk.name, lk.name, ip, "host-address" if ip else "none"
            )
    for lease in j.leases.values():
        owners.setdefault(
            lease.mac, MacOwner("lease", lease.hostname or "", None, lease.ip, "lease")
        )
    neigh_owner: dict[str, MacOwner] = {}
    for n in j.nl.neighbours:
        if n.mac and ":" not in n.ip and n.state not in ("failed", "incomplete"):
            neigh_owner.setdefault(n.mac, MacOwner("neighbour", n.ip, n.dev, n.ip, "neighbour"))
    # one lookup per FDB entry: later updates win, so apply the order backwards
    resolved: dict[str, MacOwner] = dict(neigh_owner)
    resolved.update((m, o) for m, o in owners.items() if o.kind != "vm")  # leases
    resolved.update(host_owner)
    resolved.update((m, o) for m, o in owners.items() if o.kind == "vm")
    return resolved, host_owner


def _fdb_entries(j: _Join, vms: list[Vm], fdb_cache: FdbCache | None) -> dict[str, list[FdbEntry]]:
    """Bridge -> its FDB entries with owners (records seen before reused from ``fdb_cache``)."""
    resolved, host_owner = _owner_table(j, vms)
    unknown = MacOwner("unknown", "")
    by_name = j.by_name

    def owner_of(mac: str, port: str) -> MacOwner:
        o = resolved.get(mac)
        if o is not None and o.kind == "vm":
            return o
        if mac in host_owner:
            pl = by_name.get(port)
            if pl is not None and pl.mac == mac:  # the port's own MAC (a bridge may share it)
                ip = _v4(pl.addresses)
                return MacOwner("host", port, port, ip, "host-address" if ip else "none")
        return o or unknown

    recs = j.nl.fdb
    entries: list[FdbEntry | None]
    if fdb_cache is not None:
        sig = tuple((lk.name, lk.mac, lk.addresses) for lk in j.nl.links)
        if fdb_cache.resolved != resolved or fdb_cache.link_sig != sig:
            fdb_cache.entries = {}
            fdb_cache.resolved, fdb_cache.link_sig = resolved, sig
        # found by the record's id in C-speed passes: the cache holds the records it was
        # made from (fdb_cache.records), so a cached id is that very record's
        ids = list(map(id, recs))
        entries = list(map(fdb_cache.entries.get, ids))
    else:
        entries = [None] * len(recs)
    for i in compress(range(len(recs)), map(is_, entries, repeat(None))):
        rec = recs[i]
        entries[i] = FdbEntry(
            rec.mac, rec.port, rec.vlan, rec.kind, rec.age_s, owner_of(rec.mac, rec.port)
        )
    if fdb_cache is not None:
        fdb_cache.entries = dict(zip(ids, entries, strict=True))  # type: ignore[arg-type]
        fdb_cache.records = recs
    done: list[FdbEntry] = entries  # type: ignore[assignment]
    names = set(map(_BRIDGE_OF, recs))
    if len(names) == 1:  # one bridge: no pass per entry to group them
        return {names.pop(): done}
    fdb_by_bridge: dict[str, list[FdbEntry]] = {}
    for rec, entry in zip(recs, done, strict=True):
        fdb_by_bridge.setdefault(rec.bridge, []).append(entry)
    return fdb_by_bridge


_BRIDGE_OF = attrgetter("bridge")


VlanMap = dict[str, tuple[PortVlan, ...]]


def _same_ns_peer(j: _Join, lk: Link) -> Link | None:
    """The other end of a veth whose peer is in this namespace (IFLA_LINK is an index here)."""
    if lk.kind != "veth" or lk.peer_index is None or lk.peer_netns_id is not None:
        return None
    if lk.peer_netns:
        return None
    return j.by_index.get(lk.peer_index)


def _port(
    lk: Link, info: BridgePortInfo | None, vm_name: str | None, vlans: VlanMap, peer: Link | None
) -> Port:
    owner: str | None
    if vm_name is not None:
        owner = f"VM {vm_name}"
    elif is_uplink_port(lk):
        owner = "uplink"
    elif lk.peer_netns:
        owner = f"veth -> netns {lk.peer_netns}"
    elif peer is not None and peer.master:  # a veth pair between two bridges (Proxmox's fwln)
        owner = f"veth -> {peer.name} on {peer.master}"
    else:
        owner = None
    return Port(
        name=lk.name,
        index=lk.index,
        kind=lk.kind,
        state=lk.state,
        stp_state=info.stp_state if info else "unknown",
        learning=info.learning if info else None,
        flooding=info.flooding if info else None,
        mac=lk.mac,
        owner=owner,
        vm=vm_name,
        peer_netns=lk.peer_netns,
        vlans=vlans.get(lk.name, ()),
    )


def _bridges(
    j: _Join, vms: list[Vm], networks: list[Network], fdb: dict[str, list[FdbEntry]]
) -> list[Bridge]:
    """Each bridge with its ports (owner, STP, VLANs), FDB, networks and uplink ports."""
    port_info = dict(j.nl.bridge_ports)
    stp = {b: (on, delay) for b, on, delay in j.nl.bridge_stp}
    vlans: VlanMap = dict(j.nl.bridge_vlans)
    tap_vm = {nic.tap: vm.name for vm in vms for nic in vm.nics if nic.tap}
    ports_of: dict[str, list[Link]] = {}
    for lk in j.nl.links:
        if lk.master is not None:
            ports_of.setdefault(lk.master, []).append(lk)
    bridges: list[Bridge] = []
    for br in j.nl.links:
        if br.kind != "bridge":
            continue
        members = ports_of.get(br.name, [])
        ports = [
            _port(lk, port_info.get(lk.name), tap_vm.get(lk.name), vlans, _same_ns_peer(j, lk))
            for lk in members
        ]
        on, delay = stp.get(br.name, (False, None))
        bridges.append(
            Bridge(
                name=br.name,
                index=br.index,
                mac=br.mac,
                state=br.state,
                stp=on,
                forward_delay_s=delay,
                addresses=br.addresses,
                ports=tuple(ports),
                fdb=tuple(fdb.get(br.name, ())),
                networks=tuple(n.name for n in networks if n.bridge == br.name),
                uplinks=tuple(p.name for p in ports if p.owner == "uplink"),
                vlan_filtering=br.vlan_filtering,
                vlans=vlans.get(br.name, ()),
            )
        )
    return bridges


def _problems(
    virt: VirtState,
    firewall: FirewallState | None,
    procs: ProcState | None,
    extra: Sequence[Problem],
) -> tuple[Problem, ...]:
    out = list(virt.problems)
    if firewall is not None:
        out.extend(firewall.problems)
    if procs is not None:
        out.extend(procs.problems)
    out.extend(extra)
    return tuple(out)


@_gc_paused
def build_snapshot(
    nl: NetlinkState,
    virt: VirtState,
    *,
    firewall: FirewallState | None = None,
    procs: ProcState | None = None,
    guest_macs: Mapping[str, str] | None = None,
    hostname: str | None = None,
    taken_at: float | None = None,
    problems: Sequence[Problem] = (),
    fdb_cache: FdbCache | None = None,
) -> HostSnapshot:
    """Join the readers' states. ``guest_macs`` maps a namespace guest's host-side port name to
    the MAC of its peer (read inside the peer's namespace by ``read_host``)."""
    networks = _networks_with_nat(virt, firewall)
    j = _Join(nl, virt, networks)
    vms = _all_vms(j, virt, procs, guest_macs or {})
    networks = _networks_with_vms(networks, vms)
    fdb = _fdb_entries(j, vms, fdb_cache)
    snap = HostSnapshot(
        taken_at=time.time() if taken_at is None else taken_at,
        hostname=socket.gethostname() if hostname is None else hostname,
        links=nl.links,
        bridges=tuple(_bridges(j, vms, networks, fdb)),
        networks=tuple(networks),
        vms=tuple(vms),
        neighbours=nl.neighbours,
        routes=nl.routes,
        uplink=_default_dev(nl),
        ip_forward=nl.ip_forward,
        libvirt_uri=virt.uri,
        problems=_problems(virt, firewall, procs, problems),
    )
    return replace(snap, paths=compute_paths(snap))


# --- reading ---------------------------------------------------------------------------------


def read_guest_macs(nl: NetlinkState) -> tuple[dict[str, str], list[Problem]]:
    """The MAC of each namespace guest's peer, read inside its namespace by peer ifindex
    (one lean link dump per peer namespace)."""
    wanted = [lk for lk in nl.links if is_namespace_guest_port(lk) and lk.peer_index is not None]
    if not wanted:
        return {}, []
    from kvmtui.core.netlink import read_peer_macs

    macs, errors = read_peer_macs(wanted)
    problems: list[Problem] = []
    if errors:
        denied = any("not permitted" in e for e in errors)
        hint = ": run as root to see their MACs" if denied else ""
        first = errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
        problems.append(Problem("netlink", f"netlink: guest MACs unknown: {first}{hint}"))
    return {k: v.lower() for k, v in macs.items()}, problems


def read_host(uri: str | None = None, netns: str | None = None) -> HostSnapshot:
    """Read everything now: netlink of ``netns`` (None: ours), libvirt at ``uri``, processes,
    firewall. Never raises for a missing part: it becomes a ``Problem``."""
    from kvmtui.core.firewall import read_firewall
    from kvmtui.core.procs import read_procs
    from kvmtui.core.virt import read_virt

    problems: list[Problem] = []
    nl = NetlinkState()
    try:
        from kvmtui.core.netlink import read_netlink

        nl = read_netlink(netns)
    except Exception as exc:
        problems.append(Problem("netlink", f"netlink: cannot read links ({exc})"))
    guest_macs, gp = read_guest_macs(nl)
    problems.extend(gp)
    virt = read_virt(uri)
    fw = read_firewall(netns)
    procs = read_procs(netns)
    return build_snapshot(
        nl, virt, firewall=fw, procs=procs, guest_macs=guest_macs, problems=problems
    )
