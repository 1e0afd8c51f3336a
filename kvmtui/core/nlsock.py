"""The netlink socket layer shared by :mod:`kvmtui.core.nlfast` (dumps) and
:mod:`kvmtui.core.nlwatch` (events): rtnetlink constants and struct layouts, namespace handles,
the socket, and the one loop that walks the messages of a datagram (:func:`walk`), on which the
request/ACK and dump loops of :class:`NlConn` are built.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Iterator

from kvmtui.core import netns as _netns  # underscored: nlfast star-imports this module

# --- netlink / rtnetlink constants -----------------------------------------------------------

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
SO_RCVBUFFORCE = 33

NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

NLMSG_ERROR = 2
NLMSG_DONE = 3

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
RTM_NEWNSID, RTM_GETNSID = 88, 90

AF_UNSPEC = 0
AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
AF_BRIDGE = 7

NLA_TYPE_MASK = 0x3FFF

# ifinfomsg / IFLA_*
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_STATS64 = 23
IFLA_EXT_MASK = 29
IFLA_LINK_NETNSID = 37
IFLA_PARENT_DEV_NAME = 56
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_INFO_SLAVE_KIND = 4
IFLA_INFO_SLAVE_DATA = 5
IFLA_BR_FORWARD_DELAY = 1
IFLA_BR_STP_STATE = 5
IFLA_BRPORT_STATE = 1
IFLA_BRPORT_PRIORITY = 2
IFLA_BRPORT_COST = 3
IFLA_BRPORT_LEARNING = 8
IFLA_BRPORT_UNICAST_FLOOD = 9
IFLA_TUN_TYPE = 3
IFLA_AF_SPEC = 26
IFLA_BR_VLAN_FILTERING = 7  # u8, in a bridge's IFLA_INFO_DATA
IFLA_BOND_MODE = 1  # u8, in a bond's IFLA_INFO_DATA
IFLA_MACVLAN_MODE = 1  # u32, in a macvlan's or macvtap's IFLA_INFO_DATA
IFLA_VLAN_ID = 1  # u16, in a vlan's IFLA_INFO_DATA
RTEXT_FILTER_BRVLAN = 1 << 1  # IFLA_EXT_MASK: each port's VLANs in IFLA_AF_SPEC
IFLA_BRIDGE_VLAN_INFO = 2  # in IFLA_AF_SPEC: struct bridge_vlan_info { u16 flags; u16 vid; }
BRIDGE_VLAN_INFO_PVID = 1 << 1
BRIDGE_VLAN_INFO_UNTAGGED = 1 << 2
BRIDGE_VLAN_INFO_RANGE_BEGIN = 1 << 3
BRIDGE_VLAN_INFO_RANGE_END = 1 << 4
IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_LOOPBACK = 0x8
IFF_PROMISC = 0x100
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE

# ifaddrmsg / IFA_*
IFA_ADDRESS = 1
IFA_LOCAL = 2

# rtmsg / RTA_*
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PREFSRC = 7
RTA_MULTIPATH = 9
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTN_UNICAST = 1

# ndmsg / NDA_*
NDA_DST = 1
NDA_LLADDR = 2
NDA_CACHEINFO = 3
NDA_VLAN = 5
NDA_MASTER = 9
NTF_SELF = 0x02
NTF_MASTER = 0x04
NTF_PROXY = 0x08
NTF_EXT_LEARNED = 0x10
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
USER_HZ = 100  # clock_t ticks per second in NDA_CACHEINFO and IFLA_BR_* timers

# netns ids
NETNSA_NSID = 1
NETNSA_FD = 3

OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")
STP_STATES = ("disabled", "listening", "learning", "forwarding", "blocking")
NUD_NAMES = (
    (NUD_PERMANENT, "permanent"),
    (NUD_NOARP, "noarp"),
    (NUD_REACHABLE, "reachable"),
    (NUD_STALE, "stale"),
    (NUD_DELAY, "delay"),
    (NUD_PROBE, "probe"),
    (NUD_FAILED, "failed"),
    (NUD_INCOMPLETE, "incomplete"),
)

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLA = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family dst_len src_len tos table proto scope type flags
_NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_U16 = struct.Struct("=H")
_STATS64 = struct.Struct(
    "=8Q"
)  # rx_packets tx_packets rx_bytes tx_bytes rx_err tx_err rx_drop tx_drop
_CACHEINFO = struct.Struct("=IIII")  # confirmed, used, updated, refcnt
_RTNH = struct.Struct("=HBBi")  # len, flags, hops, ifindex
_NLA_U16 = struct.Struct("=HHH")
_VLAN_INFO = struct.Struct("=HH")  # struct bridge_vlan_info: flags, vid
# An FDB message as the bridge writes it (kernel >= 5.18): nlmsghdr, ndmsg, NDA_LLADDR (6 bytes),
# NDA_MASTER, NDA_FLAGS_EXT, NDA_CACHEINFO (only ndm_updated kept), then NDA_VLAN if any.
# Checked against _FDB_FAST_SHAPE before being trusted; anything else takes the generic path.
_FDB_FAST = struct.Struct("=IHHII BxxxiHBB HH6s2x HHI HH4x HH8xI4x")
_FDB_FAST_SHAPE = (10, 2, 8, 9, 8, 15, 20, 3)  # (len, type) of LLADDR, MASTER, FLAGS_EXT, CACHEINFO

RECV_SIZE = 1 << 16  # the kernel fills dump skbs of up to 32 KiB
RCVBUF = 8 << 20


class NetlinkError(Exception):
    """Reading netlink failed; ``str(exc)`` is one line a user can act on."""


class NetnsGone(NetlinkError):
    """The network namespace asked for does not exist (or vanished)."""


def walk(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """``(type, flags, seq, header_start, msg_end)`` of every netlink message in one datagram:
    the only place that steps from one message header to the next."""
    pos = 0
    n = len(data)
    unpack = _NLMSGHDR.unpack_from
    while pos + 16 <= n:
        mlen, mtype, mflags, mseq, _pid = unpack(data, pos)
        if mlen < 16:
            raise NetlinkError("malformed netlink message")
        end = pos + mlen
        yield mtype, mflags, mseq, pos, end
        pos = (end + 3) & ~3


# --- namespaces ------------------------------------------------------------------------------


class NsHandle:
    """An open reference to a network namespace.

    Holding the fd keeps the namespace alive even if ``ip netns del`` runs meanwhile, so one
    read sees one consistent namespace; entering it uses the fd, never the path again.
    """

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.fd: int | None = None
        if name is not None:
            try:
                self.fd = _netns.open_netns(name)
            except FileNotFoundError:
                raise NetnsGone(f"network namespace {name!r} does not exist") from None
            except OSError as exc:
                raise NetlinkError(
                    f"cannot open network namespace {name!r}: {exc.strerror}"
                ) from None

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """This thread inside the namespace for the body (a no-op for the current one), as
        :func:`kvmtui.core.netns.entered` does it; a refused entry is a NetlinkError."""
        with contextlib.ExitStack() as inside:
            try:
                inside.enter_context(_netns.entered(self.fd))
            except OSError as exc:
                raise NetlinkError(
                    f"cannot enter network namespace {self.name!r}: {exc} (are you root?)"
                ) from None
            yield

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> NsHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_file(self, path: str) -> str:
        with self.entered(), open(path) as f:
            return f.read()


# --- socket ----------------------------------------------------------------------------------


def nl_socket(groups: int = 0, rcvbuf: int = RCVBUF) -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's namespace, strict checking on."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        for opt in (NETLINK_GET_STRICT_CHK, NETLINK_EXT_ACK):
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_NETLINK, opt, 1)
        sock.bind((0, groups))
    except BaseException:
        sock.close()
        raise
    return sock


def nla(atype: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    n = 4 + len(payload)
    return _NLA.pack(n, atype) + payload + b"\0" * ((4 - n % 4) % 4)


class NlConn:
    """A request/dump connection on one NETLINK_ROUTE socket (one namespace, one thread)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seq = 0
        self.interrupted = False  # a dump saw NLM_F_DUMP_INTR (the table changed meanwhile)

    @classmethod
    def open(cls, ns: NsHandle) -> NlConn:
        try:
            with ns.entered():
                return cls(nl_socket())
        except NetlinkError:
            raise
        except OSError as exc:
            raise NetlinkError(f"cannot open a netlink socket: {exc.strerror}") from None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NlConn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, mtype: int, flags: int, body: bytes) -> int:
        self.seq += 1
        msg = _NLMSGHDR.pack(16 + len(body), mtype, flags, self.seq, 0) + body
        try:
            self.sock.send(msg)
        except OSError as exc:
            raise NetlinkError(f"netlink request failed: {exc.strerror}") from None
        return self.seq

    def request(self, mtype: int, body: bytes, flags: int = 0) -> None:
        """Send one request (``flags`` e.g. NLM_F_CREATE | NLM_F_EXCL) and wait for its ACK."""
        seq = self._send(mtype, NLM_F_REQUEST | NLM_F_ACK | flags, body)
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
            except OSError as exc:
                raise NetlinkError(f"netlink read failed: {exc.strerror}") from None
            for t, _fl, mseq, pos, _end in walk(data):
                if mseq == seq and t == NLMSG_ERROR:
                    (code,) = _I32.unpack_from(data, pos + 16)
                    if code:
                        raise NetlinkError(f"netlink request {mtype} refused: {os.strerror(-code)}")
                    return

    def messages(
        self, mtype: int, body: bytes, dump: bool = True
    ) -> Iterator[tuple[int, bytes, int, int]]:
        """Send a request; yield ``(type, data, payload_start, msg_end)`` of every reply message."""
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        seq = self._send(mtype, flags, body)
        recv = self.sock.recv
        while True:
            try:
                data = recv(RECV_SIZE)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    raise NetlinkError("netlink dump overran the receive buffer") from None
                raise NetlinkError(f"netlink read failed: {exc.strerror}") from None
            for t, mflags, mseq, pos, end in walk(data):
                if mseq != seq:
                    continue
                if t == NLMSG_DONE:
                    return
                if t == NLMSG_ERROR:
                    (code,) = _I32.unpack_from(data, pos + 16)
                    if code == 0:  # an ACK
                        if not dump:
                            return
                    else:
                        raise NetlinkError(f"netlink request {mtype} refused: {os.strerror(-code)}")
                else:
                    if mflags & NLM_F_DUMP_INTR:
                        self.interrupted = True
                    yield t, data, pos + 16, end
