"""trace --stats: exact per-hop and per-flow counts on a real topology (tests/capture/topo.py),
also where the correlator sampled (a 30-frame backlog against a 3,000-frame burst), the NAT'd
uplink flow counted as the VM's flow, and frames lost between two hops said."""

from __future__ import annotations

import json

import topo as T
from test_engine import NETS, _send_from, collect
from topo import Topo, nsx

from kvmtui.capture.engine import CaptureSession
from kvmtui.capture.flowstats import FlowStats, flow_of, stats_json, stats_text


def test_every_frame_counted_per_hop_and_flow_while_rows_are_sampled(topo: Topo) -> None:
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    vm, n = T.BR_VM, 3000
    frames = [
        bytes(Ether(src=vm.mac, dst=T.LAN_MAC) / IP(src=vm.ip, dst="10.0.0.1", id=i)
              / ICMP(id=88, seq=i) / b"s")
        for i in range(n)
    ]  # fmt: skip
    stats = FlowStats()
    with CaptureSession(T.br_path(), netns=topo.host, backlog=30, sink=stats) as s:
        _send_from(topo, vm, frames, gap=0)
        collect(s, 1.5)
    b = s.poll()
    assert b.skipped > 0  # the rows were sampled...
    hops, flows = stats.result()
    kernel = {h.dev: h.received - h.dropped for h in b.hops}
    assert {h.dev: h.frames for h in hops} == kernel  # ...the counts were not
    by_key = {(f.proto, f.src, f.dst): f for f in flows}
    out = by_key[("icmp", f"{vm.ip}:88", "10.0.0.1:88")]
    back = by_key[("icmp", "10.0.0.1:88", f"{vm.ip}:88")]
    assert dict(out.per_hop) == {"vnet1": n, "br0": n, "ens9": n} and out.lost == ()
    assert dict(back.per_hop) == {"vnet1": n, "br0": n, "ens9": n}
    assert "icmp 10.0.0.50:88 > 10.0.0.1:88: vnet1 3000, br0 3000, ens9 3000" in stats_text(
        hops, flows
    )
    assert stats_json(hops, flows)["stats"]["hops"][0]["frames"] == kernel["vnet1"]


def test_nat_flow_is_one_line_and_a_drop_is_counted_as_lost(topo: Topo) -> None:
    vm = T.NAT_VM
    stats = FlowStats()
    with CaptureSession(T.nat_path(), netns=topo.host, networks=NETS, sink=stats) as s:
        assert "3 packets received" in topo.ping(vm, T.INET_IP, count=3)
        collect(s, 1.0)
        nsx(topo.host, "nft", "add table ip kvQ_drop")
        try:
            nsx(topo.host, "nft",
                "add chain ip kvQ_drop fw { type filter hook forward priority -10; }")  # fmt: skip
            nsx(topo.host, "nft", f"add rule ip kvQ_drop fw ip saddr {vm.ip} drop")
            topo.ping(vm, T.INET_IP, count=4)
            collect(s, 1.0)
        finally:
            nsx(topo.host, "nft", "delete table ip kvQ_drop")
    _hops, flows = stats.result()
    mine = [f for f in flows if f.proto == "icmp" and f.src.startswith(vm.ip + ":")]
    assert len(mine) == 2, flows  # two pings (two ICMP ids), each one line across NAT
    full = next(f for f in mine if dict(f.per_hop).get("vnet0") == 3)
    assert dict(full.per_hop) == {"vnet0": 3, "virbr0": 3, "wan0": 3} and full.lost == ()
    cut = next(f for f in mine if f is not full)
    assert dict(cut.per_hop) == {"vnet0": 4, "virbr0": 4}  # never on wan0: no third hop
    back = [f for f in flows if f.proto == "icmp" and f.dst.startswith(vm.ip + ":")]
    assert any(dict(f.per_hop) == {"wan0": 3, "virbr0": 3, "vnet0": 3} for f in back), back


def test_flow_key_reads_tags_and_ports_at_fixed_offsets() -> None:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP, Dot1Q, Ether

    tagged = Ether() / Dot1Q(vlan=5) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5, dport=53)
    assert flow_of(bytes(tagged)) == ("udp", "10.0.0.1:5", "10.0.0.2:53")
    v6 = Ether() / IPv6(src="fd00::1", dst="fd00::2") / UDP(sport=1, dport=2)
    assert flow_of(bytes(v6)) == ("udp", "[fd00::1]:1", "[fd00::2]:2")
    assert flow_of(bytes(Ether() / ARP())) == ("arp", "*", "*")
    assert flow_of(b"\x00" * 5) == ("ethertype 0x0000", "*", "*")


def test_trace_stats_prints_the_counts_at_the_end(topo: Topo) -> None:
    """The command: --stats was parsed and ignored before; now its counts come at the end,
    as text on stderr, and as one more JSON object with --json."""
    from test_cli_capture import VB, kvmtui, later

    vm = VB.format(p=topo.p)
    t = later(2.5, lambda: topo.ping(T.BR_VM, "10.0.0.1", count=2))
    r = kvmtui(topo, "trace", vm, "--count", "4", "--timeout", "20", "--filter", "icmp",
               "--stats")  # fmt: skip
    t.join()
    assert r.returncode == 0, r.stderr
    assert "per hop (every frame its filter passed, exact):" in r.stderr
    assert f"icmp {T.BR_VM.ip}:" in r.stderr and "vnet1 2, br0 2, ens9 2" in r.stderr
    t = later(2.5, lambda: topo.ping(T.BR_VM, "10.0.0.1", count=2))
    r = kvmtui(topo, "trace", vm, "--count", "4", "--timeout", "20", "--filter", "icmp",
               "--stats", "--json")  # fmt: skip
    t.join()
    last = json.loads(r.stdout.splitlines()[-1])
    assert {h["dev"] for h in last["stats"]["hops"]} == {"vnet1", "br0", "ens9"}
