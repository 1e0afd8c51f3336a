"""The netlink reader: links, bridge ports, FDB, neighbours, routes and ``ip_forward`` of one
network namespace, as :class:`kvmtui.core.model.NetlinkState`.

Everything is read over one ``NETLINK_ROUTE`` socket opened inside the namespace, with the lean
decoders of :mod:`kvmtui.core.nlfast` (the FDB of a KVM host can hold tens of thousands of entries;
pyroute2's generic parser is ~15x slower than ``bridge fdb show`` on it). The namespace is held
open by fd for the whole read, so a namespace deleted meanwhile is read consistently or not at
all; every failure is a :class:`NetlinkError` whose message is one line.

A veth's peer may live in another namespace: its ``IFLA_LINK`` is then an ifindex *there*
(``IFLA_LINK_NETNSID`` says which namespace). It is never looked up here; the namespace id is
resolved to a ``/run/netns`` name with ``RTM_GETNSID`` asked from the namespace being read.
"""

from __future__ import annotations

from collections.abc import Iterable

from kvmtui.core import nlfast, nlsock
from kvmtui.core.model import (
    BOND_MODES,
    MACVLAN_MODES,
    BridgePortInfo,
    FdbRecord,
    Link,
    LinkKind,
    LinkStats,
    Neighbour,
    NetlinkState,
    PortVlan,
    Route,
    StpState,
)
from kvmtui.core.nlfast import (
    FdbChange,
    NetlinkError,
    NetnsGone,
    NlConn,
    NsHandle,
    RawLink,
    fdb_kind,
)

__all__ = [
    "FdbChange",
    "NetlinkError",
    "NetnsGone",
    "apply_fdb_changes",
    "fdb_kind",
    "read_counters",
    "read_fdb",
    "read_links",
    "read_netlink",
    "read_peer_macs",
]

_KINDS: dict[str, LinkKind] = {
    "bridge": "bridge",
    "veth": "veth",
    "macvtap": "macvtap",
    "macvlan": "macvlan",
    "vlan": "vlan",
    "bond": "bond",
    "dummy": "dummy",
}


def link_kind(rl: RawLink) -> LinkKind:
    """The model's kind of a link, from IFLA_INFO_KIND, tun flags and the parent device."""
    if rl.kind is not None:
        if rl.kind == "tun":
            if rl.tun_type is not None:
                return "tap" if rl.tun_type & nlsock.IFF_TAP else "tun"
            return "tun" if rl.arphrd == nlsock.ARPHRD_NONE else "tap"
        return _KINDS.get(rl.kind, "other")
    if rl.flags & nlsock.IFF_LOOPBACK or rl.arphrd == nlsock.ARPHRD_LOOPBACK:
        return "loopback"
    if rl.parent_dev:  # a device with a real parent (PCI, virtio, USB...) and no rtnl kind
        return "physical"
    return "other"


def _stats(t: tuple[int, ...] | None) -> LinkStats:
    if t is None:
        return LinkStats()
    return LinkStats(
        rx_bytes=t[2], tx_bytes=t[3], rx_packets=t[0], tx_packets=t[1], rx_dropped=t[6],
        tx_dropped=t[7],
    )  # fmt: skip


def _operstate(v: int) -> str:
    return nlsock.OPERSTATES[v] if 0 <= v < len(nlsock.OPERSTATES) else "unknown"


def _build_links(
    raw: Iterable[RawLink], addrs: dict[int, list[str]], nsnames: dict[int, str]
) -> tuple[Link, ...]:
    raw = list(raw)
    names = {rl.index: rl.name for rl in raw}
    members: dict[int, list[str]] = {}
    for rl in raw:
        if rl.master and rl.slave_kind == "bond":
            members.setdefault(rl.master, []).append(rl.name)
    out = []
    for rl in raw:
        # IFLA_LINK equal to the own index means "no lower link", unless it is an index in the
        # peer's namespace (a veth pair can have the same ifindex on both sides)
        peer = rl.link if rl.link and (rl.link != rl.index or rl.netnsid is not None) else None
        out.append(
            Link(
                index=rl.index,
                name=rl.name,
                kind=link_kind(rl),
                state=_operstate(rl.operstate),
                mac=rl.mac,
                mtu=rl.mtu,
                master=names.get(rl.master) if rl.master else None,
                master_index=rl.master or None,
                peer_index=peer,
                peer_netns_id=rl.netnsid if peer is not None else None,
                peer_netns=nsnames.get(rl.netnsid) if rl.netnsid is not None else None,
                addresses=tuple(addrs.get(rl.index, ())),
                stats=_stats(rl.stats),
                flags_promisc=bool(rl.flags & nlsock.IFF_PROMISC),
                lower=names.get(peer)
                if peer and rl.kind in _STACKED and rl.netnsid is None
                else None,
                macvlan_mode=MACVLAN_MODES.get(rl.macvlan_mode or 0),
                vlan_id=rl.vlan_id,
                bond_mode=_bond_mode(rl.bond_mode),
                bond_members=tuple(members.get(rl.index, ())),
                vlan_filtering=None if rl.br_vlan_filtering is None else bool(rl.br_vlan_filtering),
            )
        )
    return tuple(out)


_STACKED = ("macvtap", "macvlan", "vlan")  # kinds whose IFLA_LINK is the device under them


def _bond_mode(v: int | None) -> str | None:
    if v is None:
        return None
    return BOND_MODES[v] if 0 <= v < len(BOND_MODES) else str(v)


def port_vlans(raw: list[tuple[int, int]]) -> tuple[PortVlan, ...]:
    """The model's VLANs of a port from ``(vid, BRIDGE_VLAN_INFO_* flags)`` pairs."""
    return tuple(
        PortVlan(
            vid,
            pvid=bool(fl & nlsock.BRIDGE_VLAN_INFO_PVID),
            untagged=bool(fl & nlsock.BRIDGE_VLAN_INFO_UNTAGGED),
        )
        for vid, fl in raw
    )


def _bridge_vlans(
    conn: NlConn, names: dict[int, str]
) -> tuple[tuple[str, tuple[PortVlan, ...]], ...]:
    """Per-port VLANs of the VLAN-aware bridges; none (not an error) where the kernel reports
    none or refuses the AF_BRIDGE dump (no bridge module, no VLAN filtering)."""
    try:
        raw = nlfast.dump_bridge_vlans(conn)
    except NetlinkError:
        return ()
    return tuple((names[i], port_vlans(v)) for i, v in raw.items() if i in names)


def _port_info(rl: RawLink) -> BridgePortInfo:
    p = rl.port
    st = p.get(nlsock.IFLA_BRPORT_STATE)
    stp: StpState = "unknown"
    if st is not None and 0 <= st < len(nlsock.STP_STATES):
        stp = nlsock.STP_STATES[st]  # type: ignore[assignment]
    learning = p.get(nlsock.IFLA_BRPORT_LEARNING)
    flood = p.get(nlsock.IFLA_BRPORT_UNICAST_FLOOD)
    return BridgePortInfo(
        stp_state=stp,
        learning=None if learning is None else bool(learning),
        flooding=None if flood is None else bool(flood),
        priority=p.get(nlsock.IFLA_BRPORT_PRIORITY),
        cost=p.get(nlsock.IFLA_BRPORT_COST),
    )


def _fdb_records(
    conn: NlConn, bridges: Iterable[tuple[int, str]], names: dict[int, str]
) -> list[FdbRecord]:
    out: list[FdbRecord] = []
    for br_index, br_name in bridges:
        out.extend(nlfast.dump_fdb(conn, br_index, names=names, bridge_name=br_name))
    return out


def _links_and_addresses(conn: NlConn) -> tuple[list[RawLink], dict[int, list[str]]]:
    """Link and address dumps, again (up to twice) if the kernel flagged one as interrupted by
    a concurrent change (NLM_F_DUMP_INTR: the dump may have missed or doubled an entry)."""
    for _attempt in range(3):
        conn.interrupted = False
        raw = nlfast.dump_links(conn)
        addrs = nlfast.dump_addresses(conn)
        if not conn.interrupted:
            break
    return raw, addrs


def _guard(netns: str | None, what: str) -> str:
    return f"reading {what} of network namespace {netns!r}" if netns else f"reading {what}"


def read_netlink(netns: str | None = None, *, fdb: bool = True) -> NetlinkState:
    """Everything the host model needs from rtnetlink in namespace ``netns`` (None: current).
    ``fdb=False`` leaves the FDB out (empty): the client keeps its own, patched from the
    watcher's events. On 1,000 ports with 50,000 entries the FDB dump is ~1 s of kernel time
    (the kernel walks the whole table once per port), the rest of this read ~35 ms."""
    try:
        with NsHandle(netns) as ns, NlConn.open(ns) as conn:
            raw, addrs = _links_and_addresses(conn)
            nsnames: dict[int, str] = {}
            if any(rl.netnsid is not None for rl in raw):
                nsnames = nlfast.netns_ids(conn)
            links = _build_links(raw, addrs, nsnames)
            names = {rl.index: rl.name for rl in raw}
            bridges = [(rl.index, rl.name) for rl in raw if rl.kind == "bridge"]
            ports = tuple((rl.name, _port_info(rl)) for rl in raw if rl.slave_kind == "bridge")
            stp = tuple(
                (
                    rl.name,
                    bool(rl.br_stp),
                    None if rl.br_fwd_delay is None else rl.br_fwd_delay / nlsock.USER_HZ,
                )
                for rl in raw
                if rl.kind == "bridge"
            )
            records = _fdb_records(conn, bridges, names) if fdb else []
            # per-port VLANs mean something only where a bridge filters by VLAN (or does not
            # say): elsewhere the dump is skipped (4 ms on 1,000 ports, 7% of this read)
            filtering = [rl.br_vlan_filtering for rl in raw if rl.kind == "bridge"]
            vlans = _bridge_vlans(conn, names) if any(f != 0 for f in filtering) else ()
            neigh = tuple(
                Neighbour(ip=ip, mac=mac, dev=names.get(idx, str(idx)), state=nlfast.nud_name(st))
                for ip, mac, idx, st in nlfast.dump_neighbours(conn)
                if not st & nlsock.NUD_NOARP
            )
            routes = tuple(
                Route(
                    dst=r.dst,
                    dev=names.get(r.oif) if r.oif else None,
                    gateway=r.gateway,
                    table=r.table,
                    prefsrc=r.prefsrc,
                )
                for r in nlfast.dump_routes(conn)
            )
            ip_forward: bool | None
            try:
                ip_forward = ns.read_file("/proc/sys/net/ipv4/ip_forward").strip() == "1"
            except OSError:
                ip_forward = None
            return NetlinkState(
                links=links,
                bridge_ports=ports,
                bridge_stp=stp,
                bridge_vlans=vlans,
                fdb=tuple(records),
                neighbours=neigh,
                routes=routes,
                ip_forward=ip_forward,
            )
    except NetlinkError:
        raise
    except OSError as exc:
        raise NetlinkError(f"{_guard(netns, 'netlink')}: {exc.strerror or exc}") from None


def read_links(netns: str | None = None) -> tuple[Link, ...]:
    """The links of ``netns`` with their addresses (no FDB, routes or neighbours)."""
    try:
        with NsHandle(netns) as ns, NlConn.open(ns) as conn:
            raw, addrs = _links_and_addresses(conn)
            nsnames = nlfast.netns_ids(conn) if any(rl.netnsid is not None for rl in raw) else {}
            return _build_links(raw, addrs, nsnames)
    except NetlinkError:
        raise
    except OSError as exc:
        raise NetlinkError(f"{_guard(netns, 'links')}: {exc.strerror or exc}") from None


def read_fdb(
    netns: str | None = None, bridge: str | None = None, port: str | None = None
) -> tuple[FdbRecord, ...]:
    """The FDB of ``bridge`` (or of every bridge) in ``netns``, filtered by the kernel; with
    ``port``, only the entries on that port (the kernel then walks its table once, instead of
    once per port: milliseconds instead of a second on a 1,000-port, 50,000-entry bridge)."""
    try:
        with NsHandle(netns) as ns, NlConn.open(ns) as conn:
            bridges_raw = nlfast.dump_links(conn, kind="bridge")
            if bridge is not None:
                bridges_raw = [rl for rl in bridges_raw if rl.name == bridge]
                if not bridges_raw:
                    raise NetlinkError(f"no bridge named {bridge!r}")
            names: dict[int, str] = {}
            for br in bridges_raw:
                names[br.index] = br.name
                for rl in nlfast.dump_links(conn, master=br.index):
                    names[rl.index] = rl.name
            if port is not None:
                index = next((i for i, n in names.items() if n == port), None)
                if index is None or index in {b.index for b in bridges_raw}:
                    where = f"bridge {bridge!r}" if bridge else "any bridge"
                    raise NetlinkError(f"{port!r} is not a port of {where}")
                out: list[FdbRecord] = []
                for br in bridges_raw:
                    out += nlfast.dump_fdb(
                        conn, br.index, port=index, names=names, bridge_name=br.name
                    )
                return tuple(out)
            return tuple(_fdb_records(conn, [(b.index, b.name) for b in bridges_raw], names))
    except NetlinkError:
        raise
    except OSError as exc:
        raise NetlinkError(f"{_guard(netns, 'the FDB')}: {exc.strerror or exc}") from None


def read_counters(netns: str | None = None) -> dict[str, LinkStats]:
    """Interface name -> counters: one link dump, only IFLA_STATS64 decoded (cheap to poll)."""
    try:
        with NsHandle(netns) as ns, NlConn.open(ns) as conn:
            return {name: _stats(t) for name, t in nlfast.dump_link_stats(conn).items()}
    except NetlinkError:
        raise
    except OSError as exc:
        raise NetlinkError(f"{_guard(netns, 'counters')}: {exc.strerror or exc}") from None


def apply_fdb_changes(
    fdb: Iterable[FdbRecord], changes: Iterable[FdbChange]
) -> tuple[FdbRecord, ...]:
    """``fdb`` with the watcher's FDB changes applied (an entry is its bridge, MAC and VLAN; a
    MAC that moved to another port replaces its old entry). Order is kept, new entries last.

    This is how a big host stays live: re-dumping 50,000 entries behind 1,000 ports costs the
    kernel about a second (it walks the whole table once per port), applying a change costs
    milliseconds. Ages are those of the last dump or event."""
    table = {(r.bridge, r.mac, r.vlan): r for r in fdb}
    for ch in changes:
        r = ch.record
        key = (r.bridge, r.mac, r.vlan)
        if ch.deleted:
            table.pop(key, None)
        else:
            table[key] = r
    return tuple(table.values())


def read_peer_macs(links: Iterable[Link]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The MAC of the far end of each veth whose peer lives in a named namespace.

    Returns ``(host-side link name -> peer MAC, problems)``: one lean link dump per peer
    namespace (never a lookup per link: 1,000 light-VM ports cost one dump, ~25 ms), the peer
    found by its ifindex *in that namespace*. A namespace that cannot be read gives one line in
    ``problems`` and no MACs."""
    by_ns: dict[str, list[Link]] = {}
    for lk in links:
        if lk.peer_netns and lk.peer_index is not None:
            by_ns.setdefault(lk.peer_netns, []).append(lk)
    macs: dict[str, str] = {}
    problems: list[str] = []
    for ns_name, lks in by_ns.items():
        try:
            with NsHandle(ns_name) as ns, NlConn.open(ns) as conn:
                there = {rl.index: rl.mac for rl in nlfast.dump_links(conn)}
        except NetlinkError as exc:
            problems.append(f"cannot read the peers in namespace {ns_name!r}: {exc}")
            continue
        except OSError as exc:
            problems.append(f"cannot read the peers in namespace {ns_name!r}: {exc.strerror}")
            continue
        for lk in lks:
            mac = there.get(lk.peer_index) if lk.peer_index is not None else None
            if mac:
                macs[lk.name] = mac
    return macs, tuple(problems)
