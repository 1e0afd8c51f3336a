"""DHCP transactions and server naming on hand-made frames (the live exchanges are in
test_engine.py and test_lab_capture.py)."""

from __future__ import annotations

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from kvmtui.capture.decode import Frame, decode
from kvmtui.capture.dhcp import DhcpTracker, HostView, transaction_json

VM = "52:54:00:ee:00:01"
VIRBR0 = "02:00:c0:a8:7a:01"
ROGUE = "52:54:00:66:66:66"
HOST = HostView({VIRBR0: "virbr0"}, {"192.168.122.1": "virbr0"}, {"virbr0": "default"}, ("wan0",))


def msg(
    kind: str,
    src_mac: str,
    src_ip: str,
    xid: int = 0x42,
    yi: str = "0.0.0.0",
    server: str | None = None,
) -> bytes:
    op = 1 if kind in ("discover", "request", "release", "decline") else 2
    opts: list[object] = [("message-type", kind)]
    if server:
        opts.append(("server_id", server))
    opts.append("end")
    return bytes(
        Ether(src=src_mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src=src_ip, dst="255.255.255.255")
        / UDP(sport=68 if op == 1 else 67, dport=67 if op == 1 else 68)
        / BOOTP(op=op, xid=xid, yiaddr=yi, chaddr=bytes.fromhex(VM.replace(":", "")))
        / DHCP(options=opts)
    )


def test_full_exchange_and_json() -> None:
    tr = DhcpTracker(HOST, {VM: "web1"})
    t = 1_000_000_000
    tr.add(decode(msg("discover", VM, "0.0.0.0")), "vnet0", "tap", t, 0)
    tr.add(decode(msg("discover", VM, "0.0.0.0")), "virbr0", "bridge", t, 1)
    offer = decode(
        msg("offer", VIRBR0, "192.168.122.1", yi="192.168.122.9", server="192.168.122.1")
    )
    # same kernel timestamp on both hops; the tap's copy is read first
    tr.add(offer, "vnet0", "tap", t + 5000, 0)
    tr.add(offer, "virbr0", "bridge", t + 5000, 1)
    tr.add(
        decode(msg("request", VM, "0.0.0.0", server="192.168.122.1")), "vnet0", "tap", t + 9000, 0
    )
    tx = tr.add(
        decode(msg("ack", VIRBR0, "192.168.122.1", yi="192.168.122.9", server="192.168.122.1")),
        "virbr0",
        "bridge",
        t + 12000,
        1,
    )
    assert tx is not None and tx.acked and tx.outcome == "bound" and tx.vm == "web1"
    j = transaction_json(tx)
    assert [(m["type"], m["dev"]) for m in j["messages"]] == [
        ("discover", "vnet0"),
        ("offer", "virbr0"),
        ("request", "vnet0"),
        ("ack", "virbr0"),
    ]
    assert j["server"]["role"] == "libvirt-dnsmasq" and j["server"]["dev"] == "virbr0"
    assert j["server"]["name"] == "libvirt's dnsmasq on virbr0 (network default)"
    assert j["offered_ip"] == "192.168.122.9" and j["xid"] == "0x00000042"
    # the same message at the same hop again is not a new message
    assert tr.add(offer, "virbr0", "bridge", t + 5000, 1) is None


def test_rogue_server_on_the_bridge_and_nak() -> None:
    tr = DhcpTracker(HOST)
    tx = tr.add(
        decode(msg("offer", ROGUE, "192.168.122.66", yi="10.6.6.6", server="192.168.122.66")),
        "virbr0",
        "bridge",
        1,
        1,
    )
    assert tx is not None and tx.server is not None
    assert tx.server.role == "other" and "rogue" in tx.server.name
    tx = tr.add(
        decode(msg("nak", VIRBR0, "192.168.122.1", server="192.168.122.1")),
        "virbr0",
        "bridge",
        2,
        1,
    )
    assert tx is not None and tx.outcome == "refused (Nak)"


def test_lan_server_behind_uplink() -> None:
    tr = DhcpTracker(HostView(uplinks=("ens9",)))
    tx = tr.add(
        decode(msg("offer", "02:00:0a:00:00:01", "10.0.0.1", yi="10.0.0.142", server="10.0.0.1")),
        "ens9",
        "uplink",
        1,
        2,
    )
    assert tx is not None and tx.server is not None
    assert (tx.server.role, tx.server.name) == ("lan", "the LAN's DHCP server behind ens9")


def _v6(src: str, dst: str, smac: str, dmac: str, payload: object) -> bytes:
    from scapy.layers.inet6 import IPv6

    sport, dport = (546, 547) if dmac.startswith("33:33") or smac == VM else (547, 546)
    return bytes(Ether(src=smac, dst=dmac) / IPv6(src=src, dst=dst)
                 / UDP(sport=sport, dport=dport) / payload)  # fmt: skip


def test_dhcpv6_exchange_grouped_and_server_named() -> None:
    """Solicit / Advertise / Request / Reply (scapy's DHCPv6) make one transaction by their
    24-bit xid, the client named by its NIC's MAC, the address from IA_NA, the server named
    like DHCPv4's (virbr0's own MAC: libvirt's dnsmasq)."""
    from scapy.layers.dhcp6 import (
        DUID_LL,
        DUID_LLT,
        DHCP6_Advertise,
        DHCP6_Reply,
        DHCP6_Request,
        DHCP6_Solicit,
        DHCP6OptClientId,
        DHCP6OptIA_NA,
        DHCP6OptIAAddress,
        DHCP6OptServerId,
    )

    other = "02:00:00:00:99:99"  # a DUID-LLT made on another NIC (a cloned image)
    cid = DHCP6OptClientId(duid=DUID_LLT(lladdr=other, timeval=1))
    sid = DHCP6OptServerId(duid=DUID_LL(lladdr=VIRBR0))
    addr = "fd00:122::1a5"
    ia = DHCP6OptIA_NA(iaid=7, ianaopts=[DHCP6OptIAAddress(addr=addr, validlft=3600)])
    vm_ll, srv_ll = "fe80::5054:ff:feee:1", "fe80::c0:a8ff:fe7a:1"
    frames = [
        _v6(vm_ll, "ff02::1:2", VM, "33:33:00:01:00:02", DHCP6_Solicit(trid=0xABCDE) / cid),
        _v6(srv_ll, vm_ll, VIRBR0, VM, DHCP6_Advertise(trid=0xABCDE) / cid / sid / ia),
        _v6(
            vm_ll,
            "ff02::1:2",
            VM,
            "33:33:00:01:00:02",
            DHCP6_Request(trid=0xABCDE) / cid / sid / ia,
        ),
        _v6(srv_ll, vm_ll, VIRBR0, VM, DHCP6_Reply(trid=0xABCDE) / cid / sid / ia),
    ]
    decoded = [decode(f) for f in frames]
    assert [f.dhcp.msg_type for f in decoded if f.dhcp] == [
        "solicit",
        "advertise",
        "request",
        "reply",
    ]
    adv = decoded[1].dhcp
    assert adv is not None and adv.v6 and adv.op == 2 and adv.xid == 0xABCDE
    assert (adv.client_mac, adv.yiaddr, adv.lease_time) == (VM, addr, 3600)
    assert decoded[0].summary() == f"DHCPv6 Solicit xid 0x0abcde {VM}"
    assert decoded[3].summary() == f"DHCPv6 Reply xid 0x0abcde {VM} {addr}"
    tr = DhcpTracker(HOST, {VM: "web6"})
    tx = None
    for i, f in enumerate(decoded):
        tx = tr.add(f, "vnet0", "tap", 1_000_000_000 + i * 1000, 0)
    assert tx is not None and tx.v6 and tx.acked and tx.outcome == "bound"
    assert [m.type for m in tx.messages] == ["solicit", "advertise", "request", "reply"]
    assert tx.offered_ip == addr and tx.vm == "web6"
    assert tx.server is not None and tx.server.role == "libvirt-dnsmasq"
    j = transaction_json(tx)
    assert j["xid"] == "0x0abcde" and j["family"] == "ipv6" and j["missing"] is None
    # only a Solicit: the wording says what did not come, in DHCPv6's terms
    tr2 = DhcpTracker(HOST)
    tx2 = tr2.add(decoded[0], "vnet0", "tap", 1, 0)
    assert tx2 is not None and transaction_json(tx2)["missing"] == "no Advertise seen"


def test_ndp_and_router_advertisement_read_like_arp() -> None:
    from scapy.layers.inet6 import (
        ICMPv6ND_NA,
        ICMPv6ND_NS,
        ICMPv6ND_RA,
        ICMPv6NDOptDstLLAddr,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptSrcLLAddr,
        IPv6,
    )

    def nd(smac: str, dmac: str, src: str, dst: str, *layers: object) -> Frame:
        pkt = Ether(src=smac, dst=dmac) / IPv6(src=src, dst=dst)
        for layer in layers:
            pkt = pkt / layer
        return decode(bytes(pkt))

    tgt = "fd00:122::1"
    ns = nd(VM, "33:33:ff:7a:00:01", "fe80::1", "ff02::1:ff7a:1",
            ICMPv6ND_NS(tgt=tgt), ICMPv6NDOptSrcLLAddr(lladdr=VM))  # fmt: skip
    na = nd(VIRBR0, VM, tgt, "fe80::1", ICMPv6ND_NA(tgt=tgt), ICMPv6NDOptDstLLAddr(lladdr=VIRBR0))
    ra = nd(VIRBR0, "33:33:00:00:00:01", "fe80::2", "ff02::1", ICMPv6ND_RA(M=1, O=1),
            ICMPv6NDOptPrefixInfo(prefix="fd00:122::", prefixlen=64))  # fmt: skip
    assert ns.nd_target == "fd00:122::1" and ns.nd_mac == VM
    assert ns.summary() == "ICMPV6 neighbor-solicit fe80::1 > ff02::1:ff7a:1 who-has fd00:122::1"
    assert na.summary().endswith(
        f"neighbor-advert fd00:122::1 > fe80::1 fd00:122::1 is-at {VIRBR0}"
    )
    assert ra.ra_prefixes == ("fd00:122::/64",) and ra.ra_flags == "MO"
    assert ra.summary().endswith("router-advert fe80::2 > ff02::1 prefix fd00:122::/64 [MO]")
