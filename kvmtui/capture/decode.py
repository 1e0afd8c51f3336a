"""Fast header decode: Ethernet, 802.1Q, IPv4, IPv6, ARP, ICMP, UDP, TCP and DHCP, with ``struct``.

This is the capture loop's parser (scapy costs 80-150 us a packet, this a few us). It never
raises: a truncated or malformed frame gives a :class:`Frame` with what could be read and
``error`` saying where it stopped. The correlation key (:attr:`Frame.key`) is built from the
fields NAT leaves alone (IPv4 ID, protocol, L4 payload length and a CRC of the L4 payload), so
the same packet has the same key on the tap, on the bridge and, rewritten by MASQUERADE, on the
uplink.
"""

from __future__ import annotations

import socket
import struct
import zlib
from dataclasses import dataclass
from typing import Any

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_QINQ1 = 0x9100  # the pre-802.1ad QinQ outer tag some switches still send

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

_PROTO_NAMES = {
    IPPROTO_ICMP: "icmp",
    IPPROTO_TCP: "tcp",
    IPPROTO_UDP: "udp",
    IPPROTO_ICMPV6: "icmpv6",
}

DHCP_TYPES = {
    1: "discover",
    2: "offer",
    3: "request",
    4: "decline",
    5: "ack",
    6: "nak",
    7: "release",
    8: "inform",
}
_DHCP_MAGIC = b"\x63\x82\x53\x63"

DHCP6_TYPES = {
    1: "solicit",
    2: "advertise",
    3: "request",
    4: "confirm",
    5: "renew",
    6: "rebind",
    7: "reply",
    8: "release",
    9: "decline",
    10: "reconfigure",
    11: "information-request",
}
DHCP6_SERVER = (2, 7, 10)  # advertise, reply, reconfigure

_ETH = struct.Struct("!6s6sH")
_VLAN = struct.Struct("!HH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_PORTS = struct.Struct("!HH")
_ICMP = struct.Struct("!BBHHH")
_TCP_OFF = struct.Struct("!HHIIBB")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s")


def mac_str(b: bytes) -> str:
    return b.hex(":")


@dataclass(frozen=True, slots=True)
class Dhcp:
    """The fields of a DHCP (BOOTP) message that tell who gave which address."""

    op: int  # 1 request (client), 2 reply (server)
    xid: int
    msg_type: str  # discover, offer, request, ack, nak, release, decline, inform, bootp
    client_mac: str  # chaddr
    ciaddr: str
    yiaddr: str  # "your" address: the offered/acked IP
    siaddr: str
    server_id: str | None = None  # option 54
    requested_ip: str | None = None  # option 50
    lease_time: int | None = None  # option 51
    router: str | None = None  # option 3 (first)
    subnet_mask: str | None = None  # option 1
    dns: tuple[str, ...] = ()  # option 6
    hostname: str | None = None  # option 12
    message: str | None = None  # option 56 (a Nak's reason); DHCPv6: the status message
    v6: bool = False  # DHCPv6 (RFC 8415): xid is 24 bits, yiaddr the IA_NA address or ""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. Fields the frame did not have (or that could not be read) are None."""

    length: int
    src_mac: str = ""
    dst_mac: str = ""
    ethertype: int = 0
    vlan: int | None = None  # the outer 802.1Q/802.1ad tag's VLAN ID
    vlans: tuple[int, ...] = ()  # every tag's VLAN ID, outer first (QinQ: (S-VID, C-VID))
    net: str = "other"  # ipv4, ipv6, arp, other
    src_ip: str | None = None
    dst_ip: str | None = None
    ip_proto: int | None = None
    ip_id: int | None = None
    ttl: int | None = None
    proto: str = "other"  # icmp, udp, tcp, icmpv6, arp, ipv4, ipv6, other
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    tcp_flags: int | None = None
    arp_op: int | None = None
    payload_len: int = 0
    payload_crc: int = 0
    dhcp: Dhcp | None = None
    nd_target: str | None = None  # NDP solicitation/advertisement: the address asked about
    nd_mac: str | None = None  # NDP: the source/target link-layer address option
    ra_prefixes: tuple[str, ...] = ()  # router advertisement: its prefixes ("2001:db8::/64")
    ra_flags: str = ""  # router advertisement: "M" (addresses by DHCPv6), "O" (other config)
    error: str | None = None

    @property
    def key(self) -> tuple[object, ...]:
        """What stays the same for one packet at every hop, NAT included."""
        if self.net == "ipv4":
            return ("4", self.ip_id, self.ip_proto, self.payload_len, self.payload_crc)
        if self.net == "ipv6":
            return ("6", self.ip_proto, self.payload_len, self.payload_crc)
        return ("l2", self.ethertype, self.payload_len, self.payload_crc)

    @property
    def flow(self) -> tuple[str | None, int | None, str | None, int | None]:
        """(src ip, src port or ICMP id, dst ip, dst port or ICMP id): what NAT rewrites."""
        if self.proto in ("icmp", "icmpv6"):
            return (self.src_ip, self.icmp_id, self.dst_ip, self.icmp_id)
        return (self.src_ip, self.sport, self.dst_ip, self.dport)

    @property
    def vlan_label(self) -> str:
        """'vlan 20', 'vlan 100.20' (QinQ: outer.inner), or '' for an untagged frame."""
        return "vlan " + ".".join(map(str, self.vlans)) if self.vlans else ""

    def summary(self, tags: bool = True) -> str:
        """One short human line: 'ICMP echo-request 192.168.122.5 > 198.51.100.1 id 7 seq 1',
        after 'vlan 20: ' when the frame is tagged (as tcpdump -e puts the tag first) unless
        ``tags`` is False."""
        line = self._summary()
        return f"{self.vlan_label}: {line}" if tags and self.vlans else line

    def _summary(self) -> str:
        if self.dhcp is not None:
            d = self.dhcp
            ip = d.yiaddr if d.yiaddr not in ("", "0.0.0.0") else (d.requested_ip or d.ciaddr)
            if d.v6:
                word = "-".join(w.capitalize() for w in d.msg_type.split("-"))
                return f"DHCPv6 {word} xid 0x{d.xid:06x} {d.client_mac} {ip}".rstrip()
            return f"DHCP {d.msg_type.capitalize()} xid 0x{d.xid:08x} {d.client_mac} {ip}"
        if self.net == "arp":
            op = {1: "who-has", 2: "is-at"}.get(self.arp_op or 0, f"op {self.arp_op}")
            return f"ARP {op} {self.dst_ip} from {self.src_ip}"
        if self.proto in ("icmp", "icmpv6"):
            names = {0: "echo-reply", 8: "echo-request", 3: "unreachable", 11: "time-exceeded"}
            if self.proto == "icmpv6":
                names = {
                    128: "echo-request",
                    129: "echo-reply",
                    133: "router-solicit",
                    134: "router-advert",
                    135: "neighbor-solicit",
                    136: "neighbor-advert",
                }
            name = names.get(self.icmp_type or 0, f"type {self.icmp_type}")
            extra = f" id {self.icmp_id} seq {self.icmp_seq}" if self.icmp_id is not None else ""
            if self.icmp_type == 135 and self.nd_target:  # as ARP reads: who-has / is-at
                extra = f" who-has {self.nd_target}"
            elif self.icmp_type == 136 and self.nd_target:
                extra = f" {self.nd_target} is-at {self.nd_mac or '?'}"
            elif self.icmp_type == 134:
                flags = f" [{self.ra_flags}]" if self.ra_flags else ""
                extra = f" prefix {', '.join(self.ra_prefixes) or 'none'}{flags}"
            return f"{self.proto.upper()} {name} {self.src_ip} > {self.dst_ip}{extra}"
        if self.proto in ("udp", "tcp"):
            flags = ""
            if self.tcp_flags is not None:
                flags = (
                    " ["
                    + "".join(c for i, c in enumerate("FSRPAUEC") if self.tcp_flags & (1 << i))
                    + "]"
                )
            return (
                f"{self.proto.upper()} {self.src_ip}:{self.sport} > {self.dst_ip}:{self.dport}"
                f"{flags} len {self.payload_len}"
            )
        if self.src_ip:
            return f"{self.proto.upper()} {self.src_ip} > {self.dst_ip}"
        return f"ethertype 0x{self.ethertype:04x} {self.src_mac} > {self.dst_mac}"


def _ip4(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, b)


def _options(data: bytes, start: int) -> dict[int, bytes]:
    """DHCP options (TLV), stopping quietly at the end or at anything malformed."""
    opts: dict[int, bytes] = {}
    i, n = start, len(data)
    while i < n:
        code = data[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= n:
            break
        ln = data[i + 1]
        val = data[i + 2 : i + 2 + ln]
        if len(val) < ln:
            break
        opts.setdefault(code, val)
        i += 2 + ln
    return opts


def _ip_opt(opts: dict[int, bytes], code: int) -> str | None:
    v = opts.get(code)
    return _ip4(v[:4]) if v is not None and len(v) >= 4 else None


def _ndp(data: bytes, l4: int, end: int, itype: int) -> dict[str, Any]:
    """NDP (RFC 4861): the target of a solicitation/advertisement, the link-layer address
    option, and a router advertisement's M/O flags and prefixes."""
    out: dict[str, Any] = {}
    if itype in (135, 136):
        if l4 + 24 > end:
            return out
        out["nd_target"] = socket.inet_ntop(socket.AF_INET6, data[l4 + 8 : l4 + 24])
        opt = l4 + 24
    elif itype == 134:
        if l4 + 16 > end:
            return out
        flags = data[l4 + 5]
        out["ra_flags"] = ("M" if flags & 0x80 else "") + ("O" if flags & 0x40 else "")
        opt = l4 + 16
    else:
        opt = l4 + 8
    prefixes = []
    while opt + 2 <= end:
        otype, olen = data[opt], data[opt + 1] * 8
        if olen == 0 or opt + olen > end:
            break
        if otype in (1, 2) and olen >= 8:
            out["nd_mac"] = mac_str(data[opt + 2 : opt + 8])
        elif otype == 3 and olen >= 32:
            plen = data[opt + 2]
            pfx = socket.inet_ntop(socket.AF_INET6, data[opt + 16 : opt + 32])
            prefixes.append(f"{pfx}/{plen}")
        opt += olen
    if prefixes:
        out["ra_prefixes"] = tuple(prefixes)
    return out


def _duid_mac(duid: bytes) -> str | None:
    """The link-layer address in a DUID-LLT (1) or DUID-LL (3) of Ethernet (hw type 1)."""
    if len(duid) >= 14 and duid[:4] == b"\x00\x01\x00\x01":
        return mac_str(duid[8:14])
    if len(duid) >= 10 and duid[:4] == b"\x00\x03\x00\x01":
        return mac_str(duid[4:10])
    return None


def decode_dhcp6(data: bytes, src_mac: str, dst_mac: str = "") -> Dhcp | None:
    """A DHCPv6 message (RFC 8415); relay messages are not unwrapped (None). The client is
    named by the frame's MAC on its side (the source of what it sends; a server answers the
    client's link-local address, so the destination of what it gets), as DHCPv4's chaddr
    names the NIC; the client DUID's MAC only when that side is multicast (a DUID-LLT may
    carry another NIC's MAC: cloned images keep theirs)."""
    if len(data) < 4 or data[0] not in DHCP6_TYPES:
        return None
    mtype, xid = data[0], int.from_bytes(data[1:4], "big")
    opts: dict[int, bytes] = {}
    i, n = 4, len(data)
    while i + 4 <= n:
        code, ln = struct.unpack_from("!HH", data, i)
        val = data[i + 4 : i + 4 + ln]
        if len(val) < ln:
            break
        opts.setdefault(code, val)
        i += 4 + ln
    addr, valid = "", None
    ia = opts.get(3)  # IA_NA: IAID, T1, T2, then its own options (IAADDR, 5)
    j = 12
    while ia is not None and j + 4 <= len(ia):
        code, ln = struct.unpack_from("!HH", ia, j)
        if code == 5 and ln >= 24 and j + 4 + 24 <= len(ia):
            addr = socket.inet_ntop(socket.AF_INET6, ia[j + 4 : j + 20])
            valid = struct.unpack_from("!I", ia, j + 24)[0]
            break
        j += 4 + ln
    server = mtype in DHCP6_SERVER
    client = dst_mac if server else src_mac
    if client.startswith("33:33:") or not client:  # multicast: the DUID is all there is
        client = _duid_mac(opts.get(1, b"")) or client
    status = opts.get(13)
    dns = opts.get(23, b"")
    return Dhcp(
        op=2 if server else 1, xid=xid, msg_type=DHCP6_TYPES[mtype], client_mac=client,
        ciaddr="", yiaddr=addr if server else "", siaddr="",
        requested_ip=None if server else (addr or None), lease_time=valid,
        dns=tuple(socket.inet_ntop(socket.AF_INET6, dns[k : k + 16])
                  for k in range(0, len(dns) - 15, 16)),
        message=status[2:].decode("utf-8", "replace") if status and len(status) > 2 else None,
        v6=True,
    )  # fmt: skip


def decode_dhcp(data: bytes) -> Dhcp | None:
    """Decode a BOOTP/DHCP UDP payload; None when it is not one."""
    if len(data) < 240 or data[236:240] != _DHCP_MAGIC:
        return None
    op, _htype, hlen, _hops, xid, _secs, _flags, ci, yi, si, _gi, chaddr = _BOOTP.unpack_from(data)
    opts = _options(data, 240)
    t = opts.get(53)
    msg_type = DHCP_TYPES.get(t[0], f"type {t[0]}") if t else "bootp"
    lease = opts.get(51)
    dns = opts.get(6, b"")
    name = opts.get(12)
    msg = opts.get(56)
    return Dhcp(
        op=op,
        xid=xid,
        msg_type=msg_type,
        client_mac=mac_str(chaddr[: min(hlen, 16) or 6]),
        ciaddr=_ip4(ci),
        yiaddr=_ip4(yi),
        siaddr=_ip4(si),
        server_id=_ip_opt(opts, 54),
        requested_ip=_ip_opt(opts, 50),
        lease_time=struct.unpack("!I", lease[:4])[0] if lease and len(lease) >= 4 else None,
        router=_ip_opt(opts, 3),
        subnet_mask=_ip_opt(opts, 1),
        dns=tuple(_ip4(dns[i : i + 4]) for i in range(0, len(dns) - 3, 4)),
        hostname=name.decode("ascii", "replace") if name else None,
        message=msg.decode("ascii", "replace") if msg else None,
    )


def decode(data: bytes) -> Frame:
    """Decode an Ethernet frame. Never raises."""
    try:
        return _decode(data)
    except Exception as exc:  # a bug here must not stop a capture: report it on the frame
        return Frame(length=len(data), error=f"decode: {type(exc).__name__}: {exc}")


def _decode(data: bytes) -> Frame:
    n = len(data)
    if n < 14:
        return Frame(length=n, error="truncated ethernet header")
    dst, src, etype = _ETH.unpack_from(data)
    off = 14
    tags: list[int] = []
    while etype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ1) and off + 4 <= n and len(tags) < 8:
        tci, etype = _VLAN.unpack_from(data, off)
        tags.append(tci & 0x0FFF)
        off += 4
    vlan = tags[0] if tags else None
    if etype in (ETH_P_8021Q, ETH_P_8021AD, ETH_P_QINQ1):
        why = "more than 8 VLAN tags" if len(tags) == 8 else "truncated VLAN tag"
        return Frame(length=n, src_mac=mac_str(src), dst_mac=mac_str(dst), ethertype=etype,
                     vlan=vlan, vlans=tuple(tags), error=why)  # fmt: skip
    base: dict[str, Any] = {
        "vlans": tuple(tags),
        "length": n,
        "src_mac": mac_str(src),
        "dst_mac": mac_str(dst),
        "ethertype": etype,
    }
    if etype == ETH_P_IP:
        return _ipv4(data, off, base, vlan)
    if etype == ETH_P_IPV6:
        return _ipv6(data, off, base, vlan)
    if etype == ETH_P_ARP:
        if off + 28 > n:
            return Frame(**base, vlan=vlan, net="arp", proto="arp", error="truncated ARP")
        _ht, _pt, _hl, _pl, op, _sha, spa, _tha, tpa = _ARP.unpack_from(data, off)
        body = data[off : off + 28]
        return Frame(
            **base,
            vlan=vlan,
            net="arp",
            proto="arp",
            arp_op=op,
            src_ip=_ip4(spa),
            dst_ip=_ip4(tpa),
            payload_len=28,
            payload_crc=zlib.crc32(body),
        )
    body = data[off:]
    return Frame(**base, vlan=vlan, payload_len=len(body), payload_crc=zlib.crc32(body))


def _ipv4(data: bytes, off: int, base: dict[str, Any], vlan: int | None) -> Frame:
    n = len(data)
    if off + 20 > n:
        return Frame(**base, vlan=vlan, net="ipv4", proto="ipv4", error="truncated IPv4 header")
    vihl, _tos, total, ip_id, frag, ttl, proto, _csum, s, d = _IPV4.unpack_from(data, off)
    ihl = (vihl & 0x0F) * 4
    src, dst = _ip4(s), _ip4(d)
    common: dict[str, Any] = dict(
        base,
        vlan=vlan,
        net="ipv4",
        src_ip=src,
        dst_ip=dst,
        ip_proto=proto,
        ip_id=ip_id,
        ttl=ttl,
        proto=_PROTO_NAMES.get(proto, "ipv4"),
    )
    if vihl >> 4 != 4 or ihl < 20:
        return Frame(**common, error="bad IPv4 header")
    if off + ihl > n:
        return Frame(**common, error=f"truncated IPv4 header ({ihl} bytes said, {n - off} there)")
    end = min(n, off + total) if total >= ihl else n
    l4 = off + ihl
    if frag & 0x1FFF:  # a later fragment: no L4 header here
        body = data[l4:end]
        return Frame(**common, payload_len=len(body), payload_crc=zlib.crc32(body))
    return _l4(data, l4, end, proto, common)


def _ipv6(data: bytes, off: int, base: dict[str, Any], vlan: int | None) -> Frame:
    n = len(data)
    if off + 40 > n:
        return Frame(**base, vlan=vlan, net="ipv6", proto="ipv6", error="truncated IPv6 header")
    _vtf, plen, nxt, hlim, s, d = _IPV6.unpack_from(data, off)
    common: dict[str, Any] = dict(
        base,
        vlan=vlan,
        net="ipv6",
        src_ip=socket.inet_ntop(socket.AF_INET6, s),
        dst_ip=socket.inet_ntop(socket.AF_INET6, d),
        ip_proto=nxt,
        ttl=hlim,
        proto=_PROTO_NAMES.get(nxt, "ipv6"),
    )
    l4 = off + 40
    end = min(n, l4 + plen)
    # skip the common extension headers (hop-by-hop, routing, destination options)
    hops = 0
    while nxt in (0, 43, 60) and l4 + 8 <= end and hops < 8:
        nxt, hl = data[l4], data[l4 + 1]
        l4 += 8 + hl * 8
        hops += 1
    common["ip_proto"] = nxt
    common["proto"] = _PROTO_NAMES.get(nxt, "ipv6")
    return _l4(data, l4, end, nxt, common)


def _l4(data: bytes, l4: int, end: int, proto: int, common: dict[str, Any]) -> Frame:
    if proto == IPPROTO_UDP:
        if l4 + 8 > end:
            return Frame(**common, error="truncated UDP header")
        sport, dport = _PORTS.unpack_from(data, l4)
        body = data[l4 + 8 : end]
        dhcp = None
        if (sport in (67, 68) or dport in (67, 68)) and len(body) >= 240:
            dhcp = decode_dhcp(body)
        elif (sport in (546, 547) or dport in (546, 547)) and len(body) >= 4:
            dhcp = decode_dhcp6(body, mac_str(data[6:12]), mac_str(data[0:6]))
        return Frame(
            **common,
            sport=sport,
            dport=dport,
            payload_len=len(body),
            payload_crc=zlib.crc32(body),
            dhcp=dhcp,
        )
    if proto == IPPROTO_TCP:
        if l4 + 14 > end:
            return Frame(**common, error="truncated TCP header")
        sport, dport, _seq, _ack, doff, flags = _TCP_OFF.unpack_from(data, l4)
        hl = (doff >> 4) * 4
        # TCP's payload is empty for most packets; the sequence numbers tell them apart
        body = data[l4 + max(hl, 20) : end]
        crc = zlib.crc32(data[l4 + 4 : l4 + 12], zlib.crc32(body))
        return Frame(
            **common,
            sport=sport,
            dport=dport,
            tcp_flags=flags,
            payload_len=len(body),
            payload_crc=crc,
        )
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if l4 + 8 > end:
            return Frame(**common, error="truncated ICMP header")
        itype, code, _c, iid, seq = _ICMP.unpack_from(data, l4)
        echo = itype in (0, 8) if proto == IPPROTO_ICMP else itype in (128, 129)
        body = data[l4 + 8 : end]
        crc = zlib.crc32(body, itype) if echo else zlib.crc32(data[l4:end])
        nd: dict[str, Any] = {}
        if proto == IPPROTO_ICMPV6 and 133 <= itype <= 136:
            nd = _ndp(data, l4, end, itype)
        return Frame(
            **common,
            icmp_type=itype,
            icmp_code=code,
            icmp_id=iid if echo else None,
            icmp_seq=seq if echo else None,
            payload_len=len(body),
            payload_crc=crc,
            **nd,
        )
    body = data[l4:end]
    return Frame(**common, payload_len=len(body), payload_crc=zlib.crc32(body))
