"""DHCP transactions and server naming on hand-made frames (the live exchanges are in
test_engine.py and test_lab_capture.py)."""

from __future__ import annotations

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from kvmtui.capture.decode import decode
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
