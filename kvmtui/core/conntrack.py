"""Conntrack entries (the kernel's NAT memory), read with pyroute2's NFCTSocket.

MASQUERADE writes its translation into the connection's *reply* tuple: a VM's ping
192.168.122.5 -> 198.51.100.1 id 7 has the reply tuple 198.51.100.1 -> 198.51.100.2 id 7 (or
another id when two VMs chose the same one). :func:`entries_for` lists the entries whose original
source is an address, in a given namespace (the KVM host's), and :meth:`ConntrackEntry.nat` says
what the VM's source became.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from kvmtui.core.netns import in_netns

Tuple4 = tuple[str, int | None, str, int | None]  # src ip, src port/ICMP id, dst ip, dst port/id


class ConntrackError(OSError):
    """Conntrack could not be read (no privileges, module not loaded): one line."""


@dataclass(frozen=True, slots=True)
class ConntrackEntry:
    proto: int  # IP protocol number
    orig: Tuple4  # as the VM sent it
    reply: Tuple4  # as the answer comes back (after MASQUERADE: to the host's address)
    status: int = 0

    @property
    def src_nat(self) -> bool:
        """True when the source was rewritten (MASQUERADE/SNAT)."""
        return (self.orig[0], self.orig[1]) != (self.reply[2], self.reply[3])

    def nat(self) -> tuple[str, str] | None:
        """("192.168.122.5:7", "198.51.100.2:7") for a source-NATed entry, else None."""
        if not self.src_nat:
            return None
        return (_ep(self.orig[0], self.orig[1]), _ep(self.reply[2], self.reply[3]))

    def matches_orig(self, proto: int, flow: Tuple4) -> bool:
        return self.proto == proto and self.orig == flow

    def matches_reply_dir(self, proto: int, flow: Tuple4) -> bool:
        """``flow`` is the translated packet leaving the host (reversed reply tuple)."""
        r = self.reply
        return self.proto == proto and (r[2], r[3], r[0], r[1]) == flow


def _ep(ip: str, port: int | None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _tuple(msg: Any, attr: str) -> tuple[int, Tuple4] | None:
    t = msg.get_attr(attr)
    if t is None:
        return None
    ip = t.get_attr("CTA_TUPLE_IP")
    pr = t.get_attr("CTA_TUPLE_PROTO")
    if ip is None or pr is None:
        return None
    src = ip.get_attr("CTA_IP_V4_SRC") or ip.get_attr("CTA_IP_V6_SRC")
    dst = ip.get_attr("CTA_IP_V4_DST") or ip.get_attr("CTA_IP_V6_DST")
    proto = pr.get_attr("CTA_PROTO_NUM")
    if src is None or dst is None or proto is None:
        return None
    if proto in (1, 58):
        iid = pr.get_attr("CTA_PROTO_ICMP_ID")
        if iid is None:
            iid = pr.get_attr("CTA_PROTO_ICMPV6_ID")
        return proto, (src, iid, dst, iid)
    return proto, (src, pr.get_attr("CTA_PROTO_SRC_PORT"), dst, pr.get_attr("CTA_PROTO_DST_PORT"))


def parse_entry(msg: Any) -> ConntrackEntry | None:
    o = _tuple(msg, "CTA_TUPLE_ORIG")
    r = _tuple(msg, "CTA_TUPLE_REPLY")
    if o is None or r is None:
        return None
    return ConntrackEntry(o[0], o[1], r[1], msg.get_attr("CTA_STATUS") or 0)


def read_entries(
    netns: str | None = None, family: int = socket.AF_INET, orig_src: str | None = None
) -> list[ConntrackEntry]:
    """Conntrack entries of ``netns`` (None: ours); with ``orig_src``, the kernel (5.8+) is asked
    for only those whose original source is that address (else all, filtered here)."""
    try:
        from pyroute2 import NFCTSocket
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple
    except ImportError as exc:  # pragma: no cover - pyroute2 is a dependency
        raise ConntrackError(f"pyroute2 is missing: {exc}") from None
    try:
        with in_netns(netns):
            ct = NFCTSocket(nfgen_family=family)
            # pyroute2 0.9 opens the netlink socket lazily: force it here, in the namespace
            try:
                flt = NFCTAttrTuple(family=family, saddr=orig_src) if orig_src else None
                msgs = list(ct.dump(tuple_orig=flt))
            except Exception:  # an older kernel refuses the filter: dump everything
                if orig_src is None:
                    raise
                msgs = list(ct.dump())
        ct.close()
    except PermissionError:
        raise ConntrackError("reading conntrack needs root (CAP_NET_ADMIN)") from None
    except OSError as exc:
        raise ConntrackError(f"cannot read conntrack: {exc}") from None
    out = []
    for m in msgs:
        e = parse_entry(m)
        if e is not None:
            out.append(e)
    return out


def entries_for(
    addr: str, netns: str | None = None, proto: int | None = None
) -> list[ConntrackEntry]:
    """Entries whose original source is ``addr`` (a VM's address: the connections it opened,
    the ones MASQUERADE translates)."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return [
        e
        for e in read_entries(netns, fam, orig_src=addr)
        if e.orig[0] == addr and (proto is None or e.proto == proto)
    ]


def find_nat(
    entries: list[ConntrackEntry], proto: int, inside: Tuple4, outside: Tuple4
) -> ConntrackEntry | None:
    """The entry that explains ``inside`` (the packet as the VM sent it) becoming ``outside``
    (the packet on the uplink), for an outgoing packet."""
    for e in entries:
        if e.matches_orig(proto, inside) and e.matches_reply_dir(proto, outside):
            return e
    return None
