"""The capture engine on a real topology of namespaces (veths, bridges, nft MASQUERADE).

Each test makes real traffic and checks what a broken engine would get wrong: the hops a
packet is seen on and in which order, the NAT translation (against conntrack's own tool as a
reference), kernel filters (other VMs' traffic is not there), promiscuous mode restored, the
tap vanishing and coming back under another name.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import topo as T
from topo import Topo, nsx

from kvmtui.capture.bpf import BpfError
from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.dhcp import DhcpTransaction
from kvmtui.capture.engine import CaptureEvent, CaptureSession
from kvmtui.capture.ring import PacketRing
from kvmtui.core.conntrack import entries_for
from kvmtui.core.model import Network

NETS = (Network("default", "u1", "nat", "virbr0", True, False),)


def collect(
    s: CaptureSession, until: float, want: int = 1 << 30
) -> tuple[list[PacketRow], list[CaptureEvent]]:
    rows: list[PacketRow] = []
    events: list[CaptureEvent] = []
    end = time.monotonic() + until
    while time.monotonic() < end and len(rows) < want:
        time.sleep(0.1)
        b = s.poll()
        rows.extend(b.rows)
        events.extend(b.events)
    return rows, events


def icmp_rows(rows: list[PacketRow], type_: int) -> list[PacketRow]:
    return [r for r in rows if r.frame.proto == "icmp" and r.frame.icmp_type == type_]


def test_nat_ping_crosses_tap_bridge_uplink_with_conntrack_nat(topo: Topo) -> None:
    with CaptureSession(T.nat_path(), netns=topo.host, networks=NETS) as s:
        out = topo.ping(T.NAT_VM, T.INET_IP, count=3)
        assert "3 packets received" in out
        rows, _ = collect(s, 1.0)
    reqs, reps = icmp_rows(rows, 8), icmp_rows(rows, 0)
    assert len(reqs) == 3 and len(reps) == 3
    ct = entries_for(T.NAT_VM.ip, topo.host, proto=1)
    for r in reqs:
        assert [h.dev for h in r.hops] == ["vnet0", "virbr0", "wan0"], r.hops
        assert r.direction == "out" and not r.missing and r.stopped is None
        assert r.hops[0].time_ns <= r.hops[-1].time_ns
        # on the tap the VM's address, on the uplink the host's: MASQUERADE
        assert r.hops[0].frame.src_ip == T.NAT_VM.ip
        assert r.hops[-1].frame.src_ip == T.UPLINK_IP
        assert r.nat is not None and r.nat.from_.startswith(T.NAT_VM.ip + ":")
        assert r.nat.to.startswith(T.UPLINK_IP + ":")
        assert r.nat.conntrack is True, r.nat.conntrack_detail
        # our conntrack reader and the kernel's own tool agree on the translation
        icmp_id = r.frame.icmp_id
        assert any(e.orig[1] == icmp_id and e.reply[2] == T.UPLINK_IP for e in ct)
    for r in reps:
        assert [h.dev for h in r.hops] == ["wan0", "virbr0", "vnet0"]
        assert r.direction == "in"
        assert r.hops[0].frame.dst_ip == T.UPLINK_IP and r.hops[-1].frame.dst_ip == T.NAT_VM.ip
        assert r.nat is not None and r.nat.to.startswith(T.NAT_VM.ip)
    ref = subprocess.run(
        ["ip", "netns", "exec", topo.host, "conntrack", "-L", "-p", "icmp", "-s", T.NAT_VM.ip],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert f"dst={T.UPLINK_IP}" in ref  # the reference tool sees the same reply tuple


def test_bridged_ping_no_nat_and_other_vms_filtered(topo: Topo) -> None:
    with CaptureSession(T.br_path(), netns=topo.host) as s:
        topo.ping(T.NAT_VM, T.INET_IP, count=2)  # another VM's traffic: must not show
        assert "2 packets received" in topo.ping(T.BR_VM, "10.0.0.1", count=2)
        rows, _ = collect(s, 1.0)
        hops = {h.dev: h for h in s.poll().hops}
    reqs, reps = icmp_rows(rows, 8), icmp_rows(rows, 0)
    assert len(reqs) == 2 and len(reps) == 2
    assert all(r.frame.src_mac == T.BR_VM.mac or r.frame.dst_mac == T.BR_VM.mac for r in rows)
    for r in reqs:
        assert [h.dev for h in r.hops] == ["vnet1", "br0", "ens9"]
        assert r.nat is None and r.stopped is None
        assert r.hops[-1].frame.src_ip == T.BR_VM.ip  # unchanged on the LAN
    for r in reps:
        assert [h.dev for h in r.hops] == ["ens9", "br0", "vnet1"]
    # the bridge saw frames it only forwarded (VM <-> LAN): that takes promiscuous mode
    assert hops["br0"].promisc and hops["br0"].received >= 4
    assert "promiscuous" in (hops["br0"].message or "")


def test_bridged_vm_to_a_neighbour_on_the_same_bridge_is_not_expected_on_the_uplink(
    topo: Topo,
) -> None:
    """The neighbour's MAC is in br0's FDB on its own tap before the capture starts (the ARP
    cache is warm, so no reply precedes the first request): the FDB says the frame stays on
    the bridge, and it must not be flagged "never on ens9"."""
    peer = T.TVm("vb2", "52:54:00:ee:00:04", "10.0.0.51", "10.0.0.1", "vnet8", "br0")
    T.sh("ip", "netns", "add", topo.ns(peer))
    try:
        topo.plug(peer)
        assert "1 packets received" in topo.ping(T.BR_VM, peer.ip, count=1)
        with CaptureSession(T.br_path(), netns=topo.host) as s:
            topo.ping(T.BR_VM, peer.ip, count=2)
            rows, _ = collect(s, 1.0)
        reqs = icmp_rows(rows, 8)
        assert len(reqs) == 2
        for r in reqs:
            assert [h.dev for h in r.hops] == ["vnet1", "br0"]
            assert "ens9" not in r.expected and r.missing == () and r.stopped is None
    finally:
        T.sh("ip", "netns", "del", topo.ns(peer), check=False)
        nsx(topo.host, "ip", "link", "del", peer.tap, check=False)


def _promisc_count(topo: Topo, dev: str) -> bool:
    out = json.loads(nsx(topo.host, "ip", "-j", "-d", "link", "show", dev).stdout)
    return int(out[0].get("promiscuity", 0)) > 0


def test_bridge_promisc_is_restored_on_close(topo: Topo) -> None:
    assert not _promisc_count(topo, "br0")
    s = CaptureSession(T.br_path(), netns=topo.host).start()
    try:
        assert _promisc_count(topo, "br0")
    finally:
        s.stop()
    assert not _promisc_count(topo, "br0")


def test_bridge_without_promisc_misses_forwarded_frames(topo: Topo) -> None:
    """Why the bridge hop is promiscuous: a plain socket on br0 does not see VM <-> LAN."""
    plain = PacketRing("br0", topo.host, "icmp")
    try:
        topo.ping(T.BR_VM, "10.0.0.1", count=2)
        time.sleep(0.2)
        got: list[tuple[int, int, int, int, bytes]] = []
        plain.read(got)
        assert got == [] and plain.stats().received == 0
    finally:
        plain.close()


def test_isolated_vm_never_reaches_the_uplink(topo: Topo) -> None:
    # a witness ring on wan0 that would see the packet if it left
    witness = PacketRing("wan0", topo.host, f"icmp and host {T.ISO_VM.ip}")
    try:
        with CaptureSession(T.iso_path(), netns=topo.host) as s:
            topo.ping(T.ISO_VM, T.INET_IP, count=2)
            rows, _ = collect(s, 1.0)
        reqs = icmp_rows(rows, 8)
        assert len(reqs) == 2
        for r in reqs:
            assert [h.dev for h in r.hops] == ["vnet2", "virbr1"]
            assert r.stopped is not None and "goes no further" in r.stopped
            assert "isolated" in r.stopped
        assert witness.stats().received == 0
    finally:
        witness.close()


def test_nat_vm_talking_to_its_gateway_is_not_flagged(topo: Topo) -> None:
    with CaptureSession(T.nat_path(), netns=topo.host) as s:
        topo.ping(T.NAT_VM, "192.168.122.1", count=2)
        rows, _ = collect(s, 1.0)
    reqs = icmp_rows(rows, 8)
    assert len(reqs) == 2
    for r in reqs:
        assert [h.dev for h in r.hops] == ["vnet0", "virbr0"] and r.stopped is None
        assert r.expected == ("vnet0", "virbr0")


def test_packet_dropped_before_uplink_is_flagged(topo: Topo) -> None:
    """A firewall drop on the host: seen on the tap and the bridge, never on wan0."""
    nsx(topo.host, "nft", "add table ip kvE_drop")
    nsx(topo.host, "nft", "add chain ip kvE_drop fw { type filter hook forward priority -10; }")
    nsx(
        topo.host,
        "nft",
        f"add rule ip kvE_drop fw ip saddr {T.NAT_VM.ip} icmp type echo-request drop",
    )
    try:
        with CaptureSession(T.nat_path(), netns=topo.host, window_s=0.3) as s:
            topo.ping(T.NAT_VM, T.INET_IP, count=2)
            rows, _ = collect(s, 1.2)
    finally:
        nsx(topo.host, "nft", "delete table ip kvE_drop")
    reqs = icmp_rows(rows, 8)
    assert len(reqs) == 2
    for r in reqs:
        assert r.missing == ("wan0",)
        assert r.stopped == "seen on vnet0, virbr0; never on wan0"


def test_user_filter_and_bad_filter(topo: Topo) -> None:
    with pytest.raises(BpfError, match="syntax error"):
        CaptureSession(T.nat_path(), netns=topo.host, bpf_filter="icmp and and")
    with CaptureSession(T.nat_path(), netns=topo.host, bpf_filter="udp") as s:
        topo.ping(T.NAT_VM, T.INET_IP, count=2)
        rows, _ = collect(s, 0.8)
        hops = s.poll().hops
    assert icmp_rows(rows, 8) == []
    assert all("(udp)" in h.filter for h in hops)


def test_tap_vanishes_and_comes_back_under_another_name(topo: Topo) -> None:
    vm = T.NAT_VM
    s = CaptureSession(T.nat_path(), netns=topo.host).start()
    try:
        topo.ping(vm, T.INET_IP, count=1)
        rows, _ = collect(s, 0.8)
        assert icmp_rows(rows, 8)
        topo.unplug(vm)  # the VM shuts down: its tap goes away
        _, events = collect(s, 2.5)
        gone = [e for e in events if e.kind == "hop-gone"]
        assert gone and gone[0].dev == "vnet0" and vm.mac in gone[0].message
        assert {h.dev: h.state for h in s.poll().hops}["vnet0"] == "gone"
        topo.plug(vm, tap="vnet7")  # it boots again, libvirt picks another vnet name
        _, events = collect(s, 3.0)
        back = [e for e in events if e.kind == "hop-back"]
        assert back and back[0].dev == "vnet7" and "was vnet0" in back[0].message
        time.sleep(0.2)
        topo.ping(vm, T.INET_IP, count=2)
        rows, _ = collect(s, 1.0)
        reqs = icmp_rows(rows, 8)
        assert reqs and [h.dev for h in reqs[0].hops] == ["vnet7", "virbr0", "wan0"]
    finally:
        s.stop()
        topo.unplug(vm, tap="vnet7")
        topo.plug(vm)


def test_dhcp_servers_named(topo: Topo) -> None:
    topo.dnsmasq(topo.host, "virbr0", ("192.168.122.100", "192.168.122.200"), "192.168.122.1")
    topo.dnsmasq(topo.lan, "eth0", ("10.0.0.100", "10.0.0.200"), "10.0.0.1")
    cases = [
        (T.nat_path(), T.NAT_VM, "libvirt-dnsmasq", "virbr0", "192.168.122.1", T.VIRBR0_MAC,
         "libvirt's dnsmasq on virbr0 (network default)"),
        (T.br_path(), T.BR_VM, "lan", "ens9", "10.0.0.1", T.LAN_MAC,
         "the LAN's DHCP server behind ens9"),
    ]  # fmt: skip
    for path, vm, role, dev, ip, mac, name in cases:
        with CaptureSession(path, netns=topo.host, networks=NETS) as s:
            r = topo.udhcpc(vm)
            assert "obtained" in r.stderr, r.stderr
            time.sleep(0.6)
            txs = [t for t in s.transactions() if t.client == vm.mac and t.acked]
        assert len(txs) == 1
        tx = txs[0]
        types = [m.type for m in tx.messages]
        assert types == ["discover", "offer", "request", "ack"], types
        assert tx.messages[0].dev == vm.tap  # the client's messages start at the tap
        assert tx.messages[1].dev == dev  # the Offer entered the path there
        assert tx.server is not None
        assert (tx.server.role, tx.server.dev, tx.server.ip, tx.server.mac) == (role, dev, ip, mac)
        assert tx.server.name == name
        assert tx.offered_ip is not None and tx.offered_ip.startswith(ip.rsplit(".", 1)[0])
        assert tx.vm == path.vm


def test_kernel_drop_counters(topo: Topo) -> None:
    """A tiny ring not read for a while overflows: the kernel's drop counter must show it."""
    ring = PacketRing("vnet0", topo.host, "udp and port 9", block_size=4096, block_nr=2)
    try:
        send = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for i in range(2000): s.sendto(b'x' * 32, ('{T.INET_IP}', 9))"
        )
        topo.ping(T.NAT_VM, T.NAT_VM.gw, count=1)  # the gateway's MAC is known: no ARP queue
        nsx(topo.ns(T.NAT_VM), "python3", "-c", send)
        time.sleep(0.1)
        st = ring.stats()
        assert st.dropped > 0 and st.received > 0
        assert 1990 <= st.received + st.dropped <= 2000
    finally:
        ring.close()


def _send_from(topo: Topo, vm: T.TVm, frames: list[bytes], gap: float = 0.05) -> None:
    """Frames sent as they are from the VM's eth0 (AF_PACKET in its namespace)."""
    import socket

    from kvmtui.core.netns import in_netns

    with in_netns(topo.ns(vm)):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        sock.bind(("eth0", 0))
        for f in frames:
            sock.send(f)
            time.sleep(gap)
    finally:
        sock.close()


def test_vlan_tagged_and_malformed_frames_sent_live_from_a_vm(topo: Topo) -> None:
    """A VM (a trunk, as Proxmox VMs often are) sends 802.1Q and QinQ frames through a bridge
    without VLAN filtering, and garbage: the tags are on the rows (the kernel takes the outer
    one off into the packet's metadata; the engine puts it back), each tagged packet is one
    row across tap, bridge and uplink, and the malformed frames neither stop the capture nor
    lose the next ping."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Dot1Q, Ether

    from kvmtui.commands.capture import row_json, row_text

    vm = T.BR_VM

    def echo(ident: int, *tags: tuple[int, int]) -> bytes:
        p = Ether(src=vm.mac, dst=T.LAN_MAC, type=tags[0][0] if tags else 0x0800)
        for i, (_tpid, vid) in enumerate(tags):
            p = p / Dot1Q(vlan=vid, type=tags[i + 1][0] if i + 1 < len(tags) else 0x0800)
        return bytes(p / IP(src=vm.ip, dst="10.0.0.1", id=7000 + ident) / ICMP(id=ident) / b"q")

    good = [echo(1, (0x8100, 20)), echo(2, (0x88A8, 100), (0x8100, 20))]
    eth = bytes.fromhex(T.LAN_MAC.replace(":", "")) + bytes.fromhex(vm.mac.replace(":", ""))
    bad = [
        eth + b"\x81\x00",  # a tag with nothing in it: the kernel frees it before any tap
        eth + b"\x81\x00\x00\x14\x08\x00" + b"\x45\x00\x00",  # truncated IPv4 header
        eth + b"\x08\x00" + b"\x4f" + bytes(30),  # IHL 60 bytes in a 31-byte packet
        eth + b"\x88\xa8" * 20,  # tags all the way down
    ]
    with CaptureSession(T.br_path(), netns=topo.host) as s:
        _send_from(topo, vm, good + bad)
        assert "2 packets received" in topo.ping(vm, "10.0.0.1", count=2)
        rows, _ = collect(s, 1.2)
        assert s.poll() is not None  # still capturing
    tagged = {r.frame.icmp_id: r for r in rows if r.frame.vlans and r.frame.proto == "icmp"}
    assert set(tagged) == {1, 2}, [r.summary for r in rows]
    for ident, vlans in ((1, (20,)), (2, (100, 20))):
        r = tagged[ident]
        assert [h.dev for h in r.hops] == ["vnet1", "br0", "ens9"], r.hops
        assert all(h.frame.vlans == vlans for h in r.hops)
        assert r.summary.startswith("vlan " + ".".join(map(str, vlans)) + ": ICMP echo-request")
        j = row_json(r)
        assert j["vlan"] == list(vlans) and all(h["vlan"] == list(vlans) for h in j["hops"])
        assert "vlan" in row_text(r)
    # each malformed frame is a row that says what is wrong with it, not dropped silently
    errors = {r.frame.error for r in rows if r.frame.error}
    assert errors == {
        "truncated IPv4 header", "more than 8 VLAN tags",
        "truncated IPv4 header (60 bytes said, 31 there)",
    }, [r.summary for r in rows]  # fmt: skip
    assert len(icmp_rows([r for r in rows if not r.frame.vlans], 8)) == 2  # the pings after


def test_a_sink_gets_every_frame_even_those_skipped_under_a_flood(
    topo: Topo, tmp_path: Path
) -> None:
    """trace --pcap's engine side: with a backlog far below the burst, most frames are skipped
    by the correlator, and still every frame the hops' filters passed reaches the pcapng file
    the engine writes in its thread (tshark counts them); the correlated ones are named after
    their row."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    from kvmtui.capture.pcapstream import PcapngStream

    vm = T.BR_VM
    frames = [
        bytes(Ether(src=vm.mac, dst=T.LAN_MAC) / IP(src=vm.ip, dst="10.0.0.1", id=i)
              / ICMP(id=77, seq=i) / b"f")
        for i in range(3000)
    ]  # fmt: skip
    out = str(tmp_path / "flood.pcapng")
    stream = PcapngStream(out)
    with CaptureSession(T.br_path(), netns=topo.host, backlog=30, sink=stream) as s:
        _send_from(topo, vm, frames, gap=0)
        collect(s, 1.5)
    b = s.poll()
    stream.close()
    assert b.skipped > 0 and stream.error is None
    assert stream.frames == b.packets >= 3 * len(frames)  # requests and replies, three hops
    r = subprocess.run(["tshark", "-r", out, "-T", "fields", "-e", "frame.comment"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == stream.frames
    named = [x for x in lines if x.startswith("row ")]
    assert 0 < len(named) < len(lines)  # the correlated ones named, the skipped ones not


def test_dhcpv6_solicit_answered_by_dnsmasq_on_virbr0_is_one_named_exchange(
    topo: Topo, tmp_path: Path
) -> None:
    """A real dnsmasq serving DHCPv6 on virbr0 (as libvirt's does for an IPv6 network): the
    VM's Solicit (sent raw with scapy: busybox has no DHCPv6 client) and dnsmasq's Advertise
    are one transaction, the address offered from the range, the server named as libvirt's
    dnsmasq on virbr0, and the NDP that dnsmasq needs to answer reads like ARP."""
    from scapy.layers.dhcp6 import (
        DUID_LL,
        DHCP6_Solicit,
        DHCP6OptClientId,
        DHCP6OptElapsedTime,
        DHCP6OptIA_NA,
    )
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    vm, h = T.NAT_VM, topo.host
    nsx(h, "ip", "-6", "addr", "add", "fd00:122::1/64", "dev", "virbr0", "nodad")
    ll = ""
    for _ in range(40):  # the VM's link-local, once its duplicate address detection is over
        addrs = json.loads(nsx(topo.ns(vm), "ip", "-j", "-6", "addr", "show", "dev", "eth0").stdout)
        infos = [a for i in addrs for a in i.get("addr_info", []) if a.get("scope") == "link"]
        if infos and not infos[0].get("tentative"):
            ll = infos[0]["local"]
            break
        time.sleep(0.1)
    assert ll, "the VM's eth0 has no link-local address"
    dm = subprocess.Popen(
        ["ip", "netns", "exec", h, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
         "--interface=virbr0", "--bind-interfaces", "--except-interface=lo", "--port=0",
         "--dhcp-range=fd00:122::100,fd00:122::1ff,64,1h", f"--pid-file={tmp_path}/d6.pid",
         f"--dhcp-leasefile={tmp_path}/d6.leases", "--log-facility=-"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        solicit = bytes(
            Ether(src=vm.mac, dst="33:33:00:01:00:02") / IPv6(src=ll, dst="ff02::1:2")
            / UDP(sport=546, dport=547)
            / DHCP6_Solicit(trid=0x5EED)
            / DHCP6OptClientId(duid=DUID_LL(lladdr=vm.mac)) / DHCP6OptElapsedTime()
            / DHCP6OptIA_NA(iaid=1)
        )  # fmt: skip
        with CaptureSession(T.nat_path(), netns=h, networks=NETS) as s:
            txs: list[DhcpTransaction] = []
            for _ in range(3):  # dnsmasq may still be binding its socket: ask again
                _send_from(topo, vm, [solicit])
                time.sleep(1.0)
                txs = [t for t in s.transactions() if t.v6 and t.client == vm.mac]
                if any(m.type == "advertise" for t in txs for m in t.messages):
                    break
            rows, _ = collect(s, 0.3)
    finally:
        dm.terminate()
        dm.wait(5)
        nsx(h, "ip", "-6", "addr", "del", "fd00:122::1/64", "dev", "virbr0", check=False)
    assert len(txs) == 1, txs
    tx = txs[0]
    types = [m.type for m in tx.messages]
    assert types[0] == "solicit" and "advertise" in types, types
    adv = next(m for m in tx.messages if m.type == "advertise")
    assert adv.dev == "virbr0" and adv.yiaddr.startswith("fd00:122::1")
    assert tx.server is not None and tx.server.role == "libvirt-dnsmasq"
    assert tx.offered_ip == adv.yiaddr and tx.xid == 0x5EED
    assert any(r.summary.startswith("DHCPv6 Advertise xid 0x005eed") for r in rows)
    # to answer the VM's link-local address the host asked for it: the VM's answer, like ARP
    assert any(r.summary.endswith(f"{ll} is-at {vm.mac}") for r in rows), [r.summary for r in rows]


def test_session_spool_keeps_every_frame_for_the_tui_export(topo: Topo, tmp_path: Path) -> None:
    """The capture view's export is the whole session: the spool (the engine's sink, a 0600
    file in the private folder) takes every frame of two sessions in turn (a filter change),
    the export copies it (tshark reads every frame), a planted file is not overwritten, the
    spool goes on close, and a dead process's spool goes on the next start."""
    import os
    import stat

    from kvmtui.capture.spool import SessionSpool

    stale = tmp_path / ".session-999999999-1.pcapng"
    stale.write_bytes(b"old")
    spool = SessionSpool(folder=str(tmp_path))
    assert not stale.exists()
    assert stat.S_IMODE(os.stat(spool.path).st_mode) == 0o600
    for flt in (None, "icmp"):
        s = CaptureSession(T.nat_path(), netns=topo.host, networks=NETS, bpf_filter=flt)
        s.sink = spool  # as the capture view's runner sets it, before start()
        with s:
            assert "2 packets received" in topo.ping(T.NAT_VM, T.INET_IP, count=2)
            collect(s, 0.6)
    out = tmp_path / "export.pcapng"
    n = spool.export(str(out))
    assert n == spool.frames >= 12  # 2 sessions x 2 pings x (request + reply) x 3 hops
    fields = ["-T", "fields", "-e", "frame.interface_name", "-e", "frame.comment"]
    r = subprocess.run(["tshark", "-r", str(out), *fields], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == n and {ln.split("\t")[0] for ln in lines} == {"vnet0", "virbr0", "wan0"}
    assert any("row " in ln for ln in lines)
    with pytest.raises(OSError):
        spool.export(str(out))  # the file is there now: never overwritten unasked
    spool.close()
    assert not os.path.exists(spool.path)
    spool.close()  # twice is fine


def test_capture_view_runner_exports_the_whole_session(
    topo: Topo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The capture view's runner gives its real sessions the spool and exports from it: the
    export is every frame, not the view's rows (none are passed here), and the words say so.
    The screen is a stand-in that runs the workers at once and keeps what they post (mock:
    Textual's worker threads are not what is tested here)."""
    import os

    from kvmtui.ui.capture_model import export_text
    from kvmtui.ui.capture_runner import CaptureRunner, ExportDone, SessionStarted

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    posted: list[object] = []

    class Screen:
        def run_worker(self, work: object, **_kw: object) -> None:
            work()  # type: ignore[operator]

        def post_message(self, m: object) -> None:
            posted.append(m)

    runner = CaptureRunner(Screen(), T.nat_path())  # type: ignore[arg-type]
    runner.factory = lambda path, bpf: CaptureSession(
        path, netns=topo.host, networks=NETS, bpf_filter=bpf
    )
    runner.open("", bpf_change=True)  # (True: no scapy preload, no drop tracer here)
    started = [m for m in posted if isinstance(m, SessionStarted)]
    assert started and runner.adopt(started[0])
    assert "2 packets received" in topo.ping(T.NAT_VM, T.INET_IP, count=2)
    time.sleep(0.8)
    target = tmp_path / "view.pcapng"
    runner.export(str(target), [])
    (done,) = [m for m in posted if isinstance(m, ExportDone)]
    assert done.error is None and done.whole and done.packets >= 6
    count = subprocess.run(["tshark", "-r", str(target), "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True).stdout.split()  # fmt: skip
    assert len(count) == done.packets
    assert "every frame of this session" in export_text(done.path, done.packets, 0, 0, True)
    spool_dir = tmp_path / "data" / "kvmtui" / "captures"
    assert [p.name for p in spool_dir.iterdir() if p.name.startswith(".session-")]
    runner.shutdown()
    for _ in range(50):  # closed by a thread once the session has stopped
        if not [p for p in os.listdir(spool_dir) if p.startswith(".session-")]:
            break
        time.sleep(0.1)
    assert not [p for p in os.listdir(spool_dir) if p.startswith(".session-")]
