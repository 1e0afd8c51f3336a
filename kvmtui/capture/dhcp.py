"""DHCP transactions by xid, with the server that answered *named*.

The seed's point (section 2): a NAT VM's address comes from libvirt's own dnsmasq listening on
virbr0; a bridged VM's comes from the LAN's DHCP server, which the host merely forwards to. A
transaction here gathers Discover / Offer / Request / Ack (and Nak, Release, Decline) by xid,
and names the server from what the Offer/Ack carried: the server identifier (option 54), the
source MAC, and the host interface it first appeared on.

- the server's MAC or IP is a host bridge's own -> "libvirt's dnsmasq on virbr0"
  (role ``libvirt-dnsmasq``; ``host`` when no libvirt network is known on that bridge);
- it came in through an uplink (ens9) -> "the LAN's DHCP server behind ens9" (role ``lan``);
- otherwise (a server on another port of the bridge) -> role ``other``: a rogue server?
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kvmtui.capture.decode import Frame
from kvmtui.core import virt
from kvmtui.core.virt import ConnectTimeout, open_readonly

SERVER_TYPES = ("offer", "ack", "nak", "advertise", "reply")  # DHCPv4 and DHCPv6
BOUND_TYPES = ("ack", "reply")  # DHCPv6's Reply binds (to a Request, Renew, Rebind, Solicit
# with rapid commit) as an Ack does


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    type: str  # discover, offer, request, ack, nak, release, decline, inform; DHCPv6: solicit,
    # advertise, request, reply, renew, rebind, confirm, release, decline, information-request
    dev: str  # the first hop that saw it (for an Offer: where it entered the path)
    time: float  # Unix epoch seconds
    src_mac: str
    src_ip: str | None
    dst_ip: str | None
    yiaddr: str
    server_id: str | None
    seen_on: tuple[str, ...] = ()  # every hop that saw it, in time order


@dataclass(frozen=True, slots=True)
class DhcpServer:
    ip: str | None  # option 54, else the source IP
    mac: str | None
    dev: str | None  # the host interface the server's answer arrived on
    role: str  # libvirt-dnsmasq, host, lan, other, unknown
    name: str  # "libvirt's dnsmasq on virbr0 (network default)"


@dataclass(frozen=True, slots=True)
class LeaseCheck:
    status: str  # match, mismatch, none, unchecked
    detail: str


@dataclass(frozen=True, slots=True)
class DhcpTransaction:
    xid: int
    client: str  # client MAC
    vm: str | None
    messages: tuple[DhcpMessage, ...]
    offered_ip: str | None
    server: DhcpServer | None
    lease_check: LeaseCheck | None = None
    v6: bool = False  # a DHCPv6 exchange (xid of 24 bits)

    @property
    def outcome(self) -> str:
        types = [m.type for m in self.messages]
        if any(t in BOUND_TYPES for t in types):
            return "bound"
        if "nak" in types:
            return "refused (Nak)"
        if "decline" in types:
            return "declined"
        if "release" in types:
            return "released"
        if "offer" in types or "advertise" in types:
            return "offered"
        return "waiting for a server"

    @property
    def acked(self) -> bool:
        return any(m.type in BOUND_TYPES for m in self.messages)


@dataclass(frozen=True, slots=True)
class HostView:
    """What the namer knows about the host: its bridges and where networks sit."""

    bridge_macs: Mapping[str, str] = field(default_factory=dict)  # mac -> bridge
    bridge_ips: Mapping[str, str] = field(default_factory=dict)  # ip -> bridge
    bridge_networks: Mapping[str, str] = field(default_factory=dict)  # bridge -> libvirt net
    uplinks: Sequence[str] = ()  # devices that lead off the host


def name_server(
    ip: str | None, mac: str | None, dev: str | None, role_of_dev: str | None, host: HostView
) -> DhcpServer:
    bridge = host.bridge_macs.get(mac or "") or host.bridge_ips.get(ip or "")
    if bridge is not None:
        net = host.bridge_networks.get(bridge)
        if net is not None:
            return DhcpServer(
                ip, mac, dev, "libvirt-dnsmasq", f"libvirt's dnsmasq on {bridge} (network {net})"
            )
        return DhcpServer(ip, mac, dev, "host", f"a DHCP server on this host, on {bridge}")
    if role_of_dev == "uplink" or (dev is not None and dev in host.uplinks):
        return DhcpServer(ip, mac, dev, "lan", f"the LAN's DHCP server behind {dev}")
    if dev is not None:
        return DhcpServer(
            ip, mac, dev, "other",
            f"a DHCP server on another port of the bridge (seen first on {dev}): rogue?",
        )  # fmt: skip
    return DhcpServer(ip, mac, dev, "unknown", "unknown DHCP server")


@dataclass(slots=True)
class _Tx:
    xid: int
    client: str
    messages: dict[tuple[str, int], DhcpMessage] = field(default_factory=dict)
    server: DhcpServer | None = None
    offered: str | None = None
    v6: bool = False


class DhcpTracker:
    """Feed frames with DHCP in them; :meth:`add` returns the transaction it updated."""

    def __init__(
        self, host: HostView | None = None, vm_by_mac: Mapping[str, str] | None = None,
        max_tx: int = 256,
    ) -> None:  # fmt: skip
        self.host = host or HostView()
        self.vm_by_mac = {k.lower(): v for k, v in (vm_by_mac or {}).items()}
        self.max_tx = max_tx
        self._tx: dict[tuple[int, str], _Tx] = {}
        self._roles: dict[str, str] = {}
        self._hop: dict[str, int] = {}

    def add(
        self, frame: Frame, dev: str, role: str, time_ns: int, hop: int = 0
    ) -> DhcpTransaction | None:
        """``hop`` is the position in the path (tap 0 ... uplink): with equal kernel timestamps
        (a bridge port and the bridge share one), a server's message is first where it is
        farthest from the VM, a client's where it is nearest."""
        d = frame.dhcp
        if d is None:
            return None
        k = (d.xid, d.client_mac)
        tx = self._tx.get(k)
        if tx is None:
            tx = self._tx[k] = _Tx(d.xid, d.client_mac, v6=d.v6)
            if len(self._tx) > self.max_tx:
                del self._tx[next(iter(self._tx))]
        self._roles[dev] = role
        self._hop[dev] = hop
        sign = -1 if d.op == 2 else 1
        t = time_ns / 1e9
        mk = (d.msg_type, frame.payload_crc)
        old = tx.messages.get(mk)
        if old is None:
            msg = DhcpMessage(
                d.msg_type, dev, t, frame.src_mac, frame.src_ip, frame.dst_ip, d.yiaddr,
                d.server_id, (dev,),
            )  # fmt: skip
        elif dev in old.seen_on:
            return None  # the same message at the same hop: a retransmission with same bytes
        elif (t, sign * hop) < (old.time, sign * self._hop.get(old.dev, 0)):  # earlier here
            msg = replace(old, dev=dev, time=t, seen_on=(dev, *old.seen_on))
        else:
            msg = replace(old, seen_on=(*old.seen_on, dev))
        tx.messages[mk] = msg
        if d.msg_type in SERVER_TYPES and d.op == 2:
            if d.yiaddr not in ("", "0.0.0.0"):
                tx.offered = d.yiaddr
            tx.server = name_server(
                d.server_id or frame.src_ip, frame.src_mac, msg.dev, self._roles.get(msg.dev),
                self.host,
            )  # fmt: skip
        return self._freeze(tx)

    def _freeze(self, tx: _Tx) -> DhcpTransaction:
        msgs = tuple(sorted(tx.messages.values(), key=lambda m: m.time))
        return DhcpTransaction(
            tx.xid, tx.client, self.vm_by_mac.get(tx.client), msgs, tx.offered, tx.server,
            v6=tx.v6,
        )  # fmt: skip

    def transactions(self) -> tuple[DhcpTransaction, ...]:
        return tuple(self._freeze(t) for t in self._tx.values())


def check_lease(tx: DhcpTransaction, uri: str | None, retries: int = 10) -> LeaseCheck:
    """Compare the acked address with libvirt's lease for the client (libvirt-python)."""
    if tx.server is not None and tx.server.role == "lan":
        return LeaseCheck(
            "none", "bridged: the LAN's server keeps the lease, libvirt has none (as expected)"
        )
    if not tx.offered_ip:
        return LeaseCheck("unchecked", "no address was offered")
    try:
        import libvirt
    except ImportError:
        return LeaseCheck("unchecked", "libvirt-python is not installed")
    seen: list[str] = []
    for attempt in range(max(1, retries)):
        try:
            conn = open_readonly(uri)
        except ConnectTimeout as exc:
            return LeaseCheck("unchecked", f"libvirt: {exc}")
        except libvirt.libvirtError as exc:
            return LeaseCheck("unchecked", f"libvirt: {exc.get_error_message()}")

        def leases_of(conn: Any = conn) -> list[tuple[str, str]]:
            found: list[tuple[str, str]] = []
            for net in conn.listAllNetworks():
                if not net.isActive():
                    continue
                try:
                    leases: list[dict[str, Any]] = net.DHCPLeases(tx.client) or []
                except libvirt.libvirtError:
                    continue
                found.extend((str(x.get("ipaddr")), str(net.name())) for x in leases)
            return found

        try:
            found = virt.under_deadline(leases_of, virt.READ_TIMEOUT_S, "reading DHCP leases")
        except virt.ReadTimeout as exc:
            return LeaseCheck("unchecked", f"libvirt: {exc}")  # conn left to its stuck thread
        except libvirt.libvirtError as exc:
            conn.close()
            return LeaseCheck("unchecked", f"libvirt: {exc.get_error_message()}")
        conn.close()
        for ip, net_name in found:
            if ip == tx.offered_ip:
                return LeaseCheck("match", f"libvirt's lease on network {net_name} agrees: {ip}")
        seen = [f"{ip} (network {net_name})" for ip, net_name in found]
        if attempt + 1 < retries:
            time.sleep(0.3)  # dnsmasq tells libvirt through its lease script, a moment later
    if seen:
        return LeaseCheck("mismatch", f"libvirt's lease says {', '.join(seen)}")
    return LeaseCheck("none", f"libvirt has no lease for {tx.client}")


def server_words(s: DhcpServer, host: HostView | None = None) -> str:
    """The server in the seed's terms, from what was seen: "server 52:54:00:.. = virbr0's own
    MAC: libvirt's dnsmasq of network default", "server .. = the LAN router 10.0.0.1, arrived
    on ens9"."""
    who = f"server {s.mac or s.ip or '?'}"
    if s.role == "libvirt-dnsmasq":
        bridge, _, net = s.name.removeprefix("libvirt's dnsmasq on ").partition(" (network ")
        return f"{who} = {bridge}'s own MAC: libvirt's dnsmasq of network {net.rstrip(')')}"
    if s.role == "lan":
        return f"{who} = the LAN router {s.ip or '?'}, arrived on {s.dev}"
    if s.role == "host":
        return f"{who} = {s.name}"
    return f"{who} = {s.name}"


def missing_words(tx: DhcpTransaction) -> str | None:
    """What did not come, in the words of what was seen ("no Offer seen")."""
    types = {m.type for m in tx.messages}
    if tx.acked or "nak" in types:
        return None
    if tx.v6:
        if "advertise" not in types:
            return "no Advertise seen"
        if "request" not in types:
            return "Advertise seen, no Request seen"
        return "Request seen, no Reply seen"
    if "offer" not in types:
        return "no Offer seen"
    if "request" not in types:
        return "Offer seen, no Request seen"
    return "Request seen, no Ack seen"


def transaction_json(tx: DhcpTransaction) -> dict[str, Any]:
    s = tx.server
    return {
        "xid": f"0x{tx.xid:06x}" if tx.v6 else f"0x{tx.xid:08x}",
        "family": "ipv6" if tx.v6 else "ipv4",
        "client": tx.client,
        "vm": tx.vm,
        "messages": [{"type": m.type, "dev": m.dev, "time": m.time} for m in tx.messages],
        "server": None
        if s is None
        else {"ip": s.ip, "mac": s.mac, "dev": s.dev, "role": s.role, "name": s.name},
        "offered_ip": tx.offered_ip,
        "outcome": tx.outcome,
        "server_says": None if s is None else server_words(s),
        "missing": missing_words(tx),
        "lease_check": None
        if tx.lease_check is None
        else {"status": tx.lease_check.status, "detail": tx.lease_check.detail},
    }
