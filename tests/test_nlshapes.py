"""Netlink decoding of the host shapes this kernel cannot build: bonds, macvtap/macvlan, vlan
links and VLAN-aware bridges with per-port VLANs.

A mock, because no real part can run here: this kernel has no bond, vlan or macvtap module and
no bridge VLAN filtering. The messages are built byte by byte in the layouts the kernel documents
(``linux/if_link.h``: IFLA_LINKINFO nesting IFLA_INFO_KIND/IFLA_INFO_DATA, IFLA_BOND_MODE u8,
IFLA_MACVLAN_MODE u32, IFLA_VLAN_ID u16, IFLA_BR_VLAN_FILTERING u8; ``linux/if_bridge.h``:
IFLA_AF_SPEC nesting ``struct bridge_vlan_info { __u16 flags; __u16 vid; }``) and fed to the
decoders through a socket stand-in that answers with the request's sequence number.
"""

from __future__ import annotations

import errno
import os
import secrets
import struct
import subprocess

import pytest

from kvmtui.core import nlfast, nlsock
from kvmtui.core.model import PortVlan
from kvmtui.core.netlink import _bridge_vlans, _build_links, read_netlink
from kvmtui.core.nlsock import nla

NESTED = 0x8000  # NLA_F_NESTED: the decoders must mask it off


class _Kernel:
    """Answers each request with ``replies`` (type, body) and NLMSG_DONE, at the request's seq."""

    def __init__(self, replies: list[tuple[int, bytes]], done: bool = True) -> None:
        self.replies = replies
        self.done = done
        self.sent = b""

    def send(self, data: bytes) -> int:
        self.sent = data
        return len(data)

    def recv(self, _n: int) -> bytes:
        seq = int.from_bytes(self.sent[8:12], "little")
        msgs = [*self.replies, *([(nlsock.NLMSG_DONE, b"\0\0\0\0")] if self.done else [])]
        out = b""
        for mtype, body in msgs:
            out += struct.pack("=IHHII", 16 + len(body), mtype, nlsock.NLM_F_MULTI, seq, 0) + body
            out += b"\0" * ((-len(out)) % 4)
        return out


def _conn(replies: list[tuple[int, bytes]], done: bool = True) -> nlsock.NlConn:
    return nlsock.NlConn(_Kernel(replies, done))  # type: ignore[arg-type]


def _link(index: int, name: str, *attrs: bytes, family: int = nlsock.AF_UNSPEC) -> bytes:
    body = struct.pack("=BxHiII", family, 1, index, 0x1043, 0)  # ifinfomsg
    body += nla(nlsock.IFLA_IFNAME, name.encode() + b"\0")
    return body + b"".join(attrs)


def _u32(atype: int, v: int) -> bytes:
    return nla(atype, struct.pack("=I", v))


def _linkinfo(kind: str, data: bytes = b"", slave: str | None = None) -> bytes:
    inner = nla(nlsock.IFLA_INFO_KIND, kind.encode()) if kind else b""
    if data:
        inner += nla(nlsock.IFLA_INFO_DATA | NESTED, data)
    if slave:
        inner += nla(nlsock.IFLA_INFO_SLAVE_KIND, slave.encode())
    return nla(nlsock.IFLA_LINKINFO, inner)


def _host_links() -> list[tuple[int, bytes]]:
    """eno1/eno2 in bond0 (802.3ad = 4), bond0 in br0 (VLAN filtering on), macvtap0 (bridge
    mode = 4) and macvlan1 (private = 1) on eno3, vlan bond0.20 on bond0."""
    new = nlsock.RTM_NEWLINK
    return [
        (new, _link(2, "eno1", _u32(nlsock.IFLA_MASTER, 5), _linkinfo("", slave="bond"))),
        (new, _link(3, "eno2", _u32(nlsock.IFLA_MASTER, 5), _linkinfo("", slave="bond"))),
        (new, _link(4, "eno3")),
        (new, _link(5, "bond0", _u32(nlsock.IFLA_MASTER, 6),
                    _linkinfo("bond", nla(nlsock.IFLA_BOND_MODE, b"\x04"), slave="bridge"))),
        (new, _link(6, "br0", _linkinfo("bridge", nla(nlsock.IFLA_BR_VLAN_FILTERING, b"\x01")))),
        (new, _link(7, "macvtap0", _u32(nlsock.IFLA_LINK, 4),
                    _linkinfo("macvtap", _u32(nlsock.IFLA_MACVLAN_MODE, 4)))),
        (new, _link(8, "macvlan1", _u32(nlsock.IFLA_LINK, 4),
                    _linkinfo("macvlan", _u32(nlsock.IFLA_MACVLAN_MODE, 1)))),
        (new, _link(9, "bond0.20", _u32(nlsock.IFLA_LINK, 5),
                    _linkinfo("vlan", nla(nlsock.IFLA_VLAN_ID, struct.pack("=H", 20))))),
    ]  # fmt: skip


def test_bond_macvtap_vlan_and_bridge_attributes_decode() -> None:
    raw = nlfast.dump_links(_conn(_host_links()))
    links = {lk.name: lk for lk in _build_links(raw, {}, {})}
    bond = links["bond0"]
    assert (bond.kind, bond.bond_mode, bond.bond_members) == ("bond", "802.3ad", ("eno1", "eno2"))
    assert links["eno1"].master == "bond0" and links["eno1"].bond_members == ()
    assert bond.master == "br0"  # the bond is a bridge port and its members' master
    assert (links["br0"].kind, links["br0"].vlan_filtering) == ("bridge", True)
    mt = links["macvtap0"]
    assert (mt.kind, mt.macvlan_mode, mt.lower, mt.peer_index) == ("macvtap", "bridge", "eno3", 4)
    assert (links["macvlan1"].macvlan_mode, links["macvlan1"].lower) == ("private", "eno3")
    v = links["bond0.20"]
    assert (v.kind, v.vlan_id, v.lower) == ("vlan", 20, "bond0")
    # what no attribute said stays unknown, never a default that looks read
    assert links["eno3"].vlan_filtering is None and links["eno3"].macvlan_mode is None
    assert links["eno3"].lower is None and bond.vlan_filtering is None


def test_missing_or_short_attributes_do_not_raise() -> None:
    new = nlsock.RTM_NEWLINK
    replies = [
        # a bond whose IFLA_BOND_MODE has no payload, a macvtap whose mode is 2 bytes of 4, a
        # vlan with only an unknown attribute, a bridge without IFLA_INFO_DATA, a bond whose data
        # is a zero-length attribute header, a bond mode newer than the table
        (new, _link(2, "bond1", _linkinfo("bond", nla(nlsock.IFLA_BOND_MODE, b"")))),
        (new, _link(3, "mt1", _linkinfo("macvtap", nla(nlsock.IFLA_MACVLAN_MODE, b"\x04\x00")))),
        (new, _link(4, "v1", _linkinfo("vlan", nla(99, b"")))),
        (new, _link(5, "br1", _linkinfo("bridge"))),
        (new, _link(6, "odd", _linkinfo("bond", b"\0" * 4))),  # an attribute of length 0
        (new, _link(7, "mode9", _linkinfo("bond", nla(nlsock.IFLA_BOND_MODE, b"\x09")))),
    ]
    links = {lk.name: lk for lk in _build_links(nlfast.dump_links(_conn(replies)), {}, {})}
    assert links["bond1"].bond_mode is None and links["bond1"].bond_members == ()
    assert links["mt1"].macvlan_mode is None and links["mt1"].lower is None
    assert links["v1"].vlan_id is None and links["br1"].vlan_filtering is None
    assert links["odd"].kind == "bond" and links["odd"].bond_mode is None
    assert links["mode9"].bond_mode == "9"  # a mode newer than this table: its number


def _vlan_info(flags: int, vid: int) -> bytes:
    return nla(nlsock.IFLA_BRIDGE_VLAN_INFO, struct.pack("=HH", flags, vid))


def _af_spec(*infos: bytes) -> bytes:
    return nla(nlsock.IFLA_AF_SPEC | NESTED, b"".join(infos))


PVID, UNTAGGED = nlsock.BRIDGE_VLAN_INFO_PVID, nlsock.BRIDGE_VLAN_INFO_UNTAGGED


def test_af_bridge_dump_per_port_vlans_and_pvid() -> None:
    br = nlsock.AF_BRIDGE
    new = nlsock.RTM_NEWLINK
    master = _u32(nlsock.IFLA_MASTER, 6)
    replies = [
        # tap100i0: PVID 20, untagged (an access port)
        (new, _link(10, "tap100i0", master, _af_spec(_vlan_info(PVID | UNTAGGED, 20)), family=br)),
        # bond0: trunk of 20 and 30 tagged, plus 1 as PVID untagged; 100-102 as a range
        (
            new,
            _link(
                5,
                "bond0",
                master,
                _af_spec(
                    _vlan_info(PVID | UNTAGGED, 1),
                    _vlan_info(0, 20),
                    _vlan_info(0, 30),
                    _vlan_info(nlsock.BRIDGE_VLAN_INFO_RANGE_BEGIN, 100),
                    _vlan_info(nlsock.BRIDGE_VLAN_INFO_RANGE_END, 102),
                ),
                family=br,
            ),
        ),
        # a port without IFLA_AF_SPEC (no VLAN filtering) and one with a short vlan info
        (new, _link(11, "vnet9", master, family=br)),
        (
            new,
            _link(
                12, "short", master, _af_spec(nla(nlsock.IFLA_BRIDGE_VLAN_INFO, b"\1\0")), family=br
            ),
        ),
    ]
    conn = _conn(replies)
    names = {10: "tap100i0", 5: "bond0", 11: "vnet9", 12: "short"}
    got = dict(_bridge_vlans(conn, names))
    sent = conn.sock.sent  # type: ignore[attr-defined]
    # the request: RTM_GETLINK dump, ifinfomsg family AF_BRIDGE, IFLA_EXT_MASK = RTEXT_FILTER_BRVLAN
    assert struct.unpack_from("=HH", sent, 4) == (nlsock.RTM_GETLINK, 0x301)
    assert sent[16] == nlsock.AF_BRIDGE
    assert sent[32:40] == struct.pack("=HHI", 8, nlsock.IFLA_EXT_MASK, 2)
    assert got["tap100i0"] == (PortVlan(20, pvid=True, untagged=True),)
    assert [v.vid for v in got["bond0"]] == [1, 20, 30, 100, 101, 102]
    assert [v.vid for v in got["bond0"] if v.pvid] == [1]
    assert not any(v.untagged for v in got["bond0"] if v.vid != 1)
    assert "vnet9" not in got and "short" not in got


def test_af_bridge_dump_refused_is_no_vlans() -> None:
    """A kernel that refuses the AF_BRIDGE dump (no bridge module): no VLANs, no exception."""
    err = struct.pack("=i", -errno.EOPNOTSUPP) + b"\0" * 16
    assert _bridge_vlans(_conn([(nlsock.NLMSG_ERROR, err)], done=False), {}) == ()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a network namespace)")
def test_real_bridge_without_vlan_filtering_skips_the_vlan_dump(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On this kernel (a real part): a bridge reports IFLA_BR_VLAN_FILTERING 0, so read_netlink
    does not ask for per-port VLANs at all (the dump is decoded above, on the mock)."""
    ns = f"kvB-{secrets.token_hex(3)}-vl"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "br0", "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "add", "v0", "master", "br0", "type", "veth",
                        "peer", "name", "v1"], check=True)  # fmt: skip
        calls: list[int] = []
        real = nlfast.dump_bridge_vlans
        monkeypatch.setattr(nlfast, "dump_bridge_vlans", lambda c: calls.append(1) or real(c))
        st = read_netlink(ns)
        br = next(lk for lk in st.links if lk.name == "br0")
        assert br.vlan_filtering is False and st.bridge_vlans == () and calls == []
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
