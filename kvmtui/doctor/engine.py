"""The findings engine: from a HostSnapshot and HostFacts to ranked findings per VM NIC.

Checks are data (STYLE.md, "rules as data"): :data:`CHECKS` lists small functions, each taking
one NIC's context and returning its findings; :data:`RANK` orders the codes so the most likely
root cause comes first (a tap that is down outranks the missing lease it causes). A new check is
one function, one row in CHECKS and one rank. ``diagnose`` is pure and fast; ``read_facts``
(kvmtui.doctor.facts) does the reading.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from kvmtui.core.model import (
    DHCP_MODES,
    ROUTED_MODES,
    Bridge,
    FdbEntry,
    HostSnapshot,
    Link,
    Network,
    NicPath,
    Port,
    Vm,
    VmNic,
)
from kvmtui.doctor.facts import HostFacts, read_facts
from kvmtui.doctor.fwsim import verdict_at
from kvmtui.doctor.model import (
    Fact,
    Finding,
    HostDiagnosis,
    NicDiagnosis,
    Severity,
    VmDiagnosis,
    ranked,
    verdict_of,
)

__all__ = ["CHECKS", "RANK", "diagnose", "diagnose_host", "read_facts"]

# lower = more likely the root cause; the tracer's drop.* findings rank 1 (the kernel's word)
RANK: dict[str, int] = {
    "vm.not_running": 5,
    "network.inactive": 10,
    "tap.missing": 12,
    "bridge.down": 15,
    "guest.link_down": 19,
    "tap.down": 20,
    "tap.no_bridge": 22,
    "tap.wrong_bridge": 24,
    "port.not_forwarding": 26,
    "mac.clash": 28,
    "uplink.missing": 30,
    "uplink.no_carrier": 32,
    "vlan.no_pvid": 33,
    "vlan.not_on_uplink": 33,
    "mtu.mismatch": 34,
    "firewall.bridged_dropped": 36,
    "nat.ip_forward_off": 40,
    "nat.no_default_route": 42,
    "nat.default_route_not_uplink": 44,
    "firewall.forward_drop": 46,
    "nat.masquerade_missing": 48,
    "dhcp.dnsmasq_down": 50,
    "dhcp.dnsmasq_unbound": 52,
    "firewall.dhcp_blocked": 54,
    "dhcp.range_exhausted": 56,
    "ip.clash": 58,
    "dhcp.no_lease": 70,
    "guest.mac_not_learned": 75,
    "network.isolated": 90,
}

_ROUTED = ROUTED_MODES  # the mode sets live in core.model, defined once
_DHCP_MODES = DHCP_MODES


@dataclass(frozen=True, slots=True)
class Nic:
    """Everything one check may look at for one NIC."""

    snap: HostSnapshot
    facts: HostFacts
    vm: Vm
    nic: VmNic
    path: NicPath | None
    network: Network | None
    tap: Link | None
    bridge: Bridge | None  # the bridge the tap is on now
    port: Port | None
    look: Lookups | None = None  # one diagnose's shared tables (None: each check scans)


class Lookups:
    """Tables one ``diagnose`` shares between its NICs, each made on first use: with 1,000
    NICs on a bridge of 50,000 FDB entries, a scan of the FDB per NIC cost 0.9 s a run (in
    the explorer's doctor worker, holding the GIL the UI thread needs for its keys)."""

    def __init__(self) -> None:
        self._fdb: dict[str, dict[str, list[FdbEntry]]] = {}
        self._mtus: dict[str, dict[str, int]] = {}

    def fdb_of(self, bridge: Bridge, mac: str) -> list[FdbEntry]:
        by_mac = self._fdb.get(bridge.name)
        if by_mac is None:
            by_mac = self._fdb[bridge.name] = {}
            for e in bridge.fdb:
                by_mac.setdefault(e.mac, []).append(e)
        return by_mac.get(mac, [])

    def mtus(self, snap: HostSnapshot, bridge: str) -> dict[str, int]:
        if not self._mtus:
            for lk in snap.links:
                if lk.master is not None:
                    self._mtus.setdefault(lk.master, {})[lk.name] = lk.mtu
        return self._mtus.get(bridge, {})


def _f(code: str, sev: Severity, hop: str | None, summary: str, facts: list[Fact],
       fix: str | None) -> Finding:  # fmt: skip
    return Finding(code, sev, hop, summary, tuple(facts), fix, RANK.get(code, 100))


def _ipv4(net: Network | None) -> tuple[str, int] | None:
    if net is None:
        return None
    for a in net.addresses:
        if a.family == "ipv4":
            return a.address, a.prefix
    return None


def _subnet(net: Network | None) -> ipaddress.IPv4Network | None:
    v4 = _ipv4(net)
    return ipaddress.IPv4Network(f"{v4[0]}/{v4[1]}", strict=False) if v4 else None


# --- checks -----------------------------------------------------------------------------------


def check_running(c: Nic) -> list[Finding]:
    if c.vm.state == "running":
        return []
    return [_f("vm.not_running", "info", None, f"{c.vm.name} is {c.vm.state}: no tap, no path",
               [Fact(f"state {c.vm.state}", "libvirt")], f"virsh start {c.vm.name}")]  # fmt: skip


def check_network(c: Nic) -> list[Finding]:
    n = c.network
    if n is None or n.active:
        return []
    return [_f("network.inactive", "error", n.bridge,
               f"libvirt network {n.name} is not active: its bridge, DHCP and NAT are gone",
               [Fact(f"network {n.name} active=no", "libvirt")],
               f"virsh net-start {n.name}")]  # fmt: skip


def check_tap(c: Nic) -> list[Finding]:
    tap = c.nic.tap
    if tap is None or c.tap is None:
        return [_f("tap.missing", "error", tap, f"{c.vm.name}'s tap {tap or '(none)'} is missing",
                   [Fact(f"no link named {tap}" if tap else "libvirt names no tap", "netlink")],
                   f"virsh domiflist {c.vm.name}; restart the VM's NIC")]  # fmt: skip
    out = []
    st = c.tap.state
    admin_down = tap in c.facts.admin_down
    if st in ("down", "lowerlayerdown") and not admin_down:
        out.append(_f("guest.link_down", "error", tap,
                      f"{c.vm.name}'s own link is down: {tap} lost its carrier from the guest",
                      [Fact(f"{tap} operstate {st}, admin up", "netlink, /sys/class/net")],
                      f"inside the guest: ip link set eth0 up (or virsh domif-setlink "
                      f"{c.vm.name} {tap} up)"))  # fmt: skip
    elif st == "down":
        out.append(_f("tap.down", "error", tap, f"tap {tap} of {c.vm.name} is down",
                      [Fact(f"{tap} set down (IFF_UP clear)", "netlink, /sys/class/net")],
                      f"ip link set {tap} up"))  # fmt: skip
    if c.tap.master is None and c.tap.kind != "macvtap":  # a macvtap is on its NIC, not a bridge
        want = c.network.bridge if c.network else c.nic.bridge
        facts = [Fact(f"{tap} has no master", "netlink")]
        fix = f"ip link set {tap} master {want or 'BRIDGE'}"
        net = c.network
        if c.vm.kind == "libvirt" and net is not None and net.active and net.mode in DHCP_MODES:
            # the usual cause: virsh net-destroy/net-start (or a net-update that restarts the
            # network) made a new bridge and libvirt does not put running VMs' taps back on it
            facts.append(Fact(f"its libvirt network {net.name} is active on {want}",
                              "libvirt"))  # fmt: skip
            fix += (" (after a restart of the network libvirt leaves running VMs' taps "
                    "off the new bridge; restarting libvirtd re-plugs them all, libvirt "
                    ">= 6.0)")  # fmt: skip
        out.append(_f("tap.no_bridge", "error", tap, f"tap {tap} is on no bridge", facts, fix))
    return out


def _expected_bridge(c: Nic) -> tuple[str, str] | None:
    """(bridge, why) the NIC belongs on, from libvirt or from the network that leased its MAC."""
    if c.vm.kind == "libvirt":
        if c.network is not None and c.network.bridge:
            return c.network.bridge, f"libvirt network {c.network.name}"
        if c.nic.type == "bridge" and c.nic.bridge:
            return c.nic.bridge, "the domain's <source bridge>"
        return None
    for n in c.snap.networks:
        if n.bridge and any(le.mac == c.nic.mac for le in n.leases):
            return n.bridge, f"its DHCP lease is from network {n.name}"
    return None


def check_wrong_bridge(c: Nic) -> list[Finding]:
    if c.tap is None or c.tap.master is None:
        return []
    exp = _expected_bridge(c)
    if exp is None or exp[0] == c.tap.master:
        return []
    return [_f("tap.wrong_bridge", "error", c.nic.tap,
               f"tap {c.nic.tap} is on {c.tap.master}, but it belongs on {exp[0]}",
               [Fact(f"{c.nic.tap} master {c.tap.master}", "netlink"),
                Fact(f"expected {exp[0]}: {exp[1]}", "libvirt")],
               f"ip link set {c.nic.tap} master {exp[0]}")]  # fmt: skip


def check_bridge(c: Nic) -> list[Finding]:
    b = c.bridge
    if b is None or b.state not in ("down",):
        return []
    up_ports = [p for p in b.ports if p.state in ("up", "unknown")]
    if not up_ports and b.ports:
        return []  # down because its ports are: the port findings say why
    return [_f("bridge.down", "error", b.name, f"bridge {b.name} is down",
               [Fact(f"{b.name} operstate {b.state}", "netlink")],
               f"ip link set {b.name} up")]  # fmt: skip


def check_port(c: Nic) -> list[Finding]:
    p = c.port
    if p is None or p.stp_state in ("forwarding", "unknown"):
        return []
    sev: Severity = "warning" if p.stp_state in ("listening", "learning") else "error"
    why = {
        "disabled": "the port is disabled",
        "blocking": "STP blocks the port",
        "listening": "STP is still listening (forward delay)",
        "learning": "STP is still learning (forward delay)",
    }[p.stp_state]
    return [_f("port.not_forwarding", sev, p.name,
               f"bridge port {p.name} is {p.stp_state}, not forwarding: {why}",
               [Fact(f"{p.name} STP state {p.stp_state}", "netlink")],
               f"bridge link set dev {p.name} state 3")]  # fmt: skip


def check_uplink(c: Nic) -> list[Finding]:
    b = c.bridge
    if b is None or c.network is None or c.network.mode != "bridge":
        return []
    if not b.uplinks:
        return [_f("uplink.missing", "error", b.name,
                   f"bridge {b.name} has no uplink: bridged VMs reach no LAN",
                   [Fact(f"ports of {b.name}: {', '.join(p.name for p in b.ports) or 'none'}",
                         "netlink")],
                   f"ip link set NIC master {b.name}  (the host's physical NIC)")]  # fmt: skip
    out = []
    for up in b.uplinks:
        port = next((p for p in b.ports if p.name == up), None)
        if port is not None and port.state not in ("up", "unknown"):
            out.append(_f("uplink.no_carrier", "error", up,
                          f"uplink {up} of {b.name} has no carrier (cable, switch port, peer)",
                          [Fact(f"{up} operstate {port.state}", "netlink")],
                          f"check the cable/switch port; ip link set {up} up"))  # fmt: skip
    return out


def check_vlans(c: Nic) -> list[Finding]:
    """On a VLAN-aware bridge, from the path's VLAN evidence: a port without PVID drops the VM's
    untagged frames; an uplink that does not carry the VM's VLAN drops them there."""
    hops = c.path.hops if c.path else ()
    vid = next((h.vlan for h in hops if h.role == "bridge" and h.vlan is not None), None)
    out: list[Finding] = []
    entry = c.nic.tap  # the port frames enter the next bridge by (a veth after a fwbr)
    for h in hops:
        bad = next((e for e in h.evidence if e.what == "VLAN" and e.ok is False), None)
        if bad is not None and h.role == "bridge":
            out.append(_f("vlan.no_pvid", "error", entry,
                          f"{entry} has no PVID on VLAN-aware bridge {h.dev}: the VM's untagged "
                          "frames are dropped", [Fact(bad.value, "netlink (bridge vlan)")],
                          f"bridge vlan add dev {entry} vid VID pvid untagged"))  # fmt: skip
        elif bad is not None and h.role == "uplink":
            out.append(_f("vlan.not_on_uplink", "error", h.dev,
                          f"uplink {h.dev} does not carry VLAN {vid}: the VM's frames stop there",
                          [Fact(bad.value, "netlink (bridge vlan)")],
                          f"bridge vlan add dev {h.dev} vid {vid}"))  # fmt: skip
        if h.role == "veth" and h.dev:
            entry = h.dev
    return out


def check_mtu(c: Nic) -> list[Finding]:
    b = c.bridge
    if b is None or c.tap is None:
        return []
    if c.look is not None:
        mtus = c.look.mtus(c.snap, b.name)
    else:
        mtus = {lk.name: lk.mtu for lk in c.snap.links if lk.master == b.name}
    low = min(mtus.values(), default=0)
    if not mtus or low == max(mtus.values()):
        return []
    small = sorted(n for n, m in mtus.items() if m == low)
    hop = next((n for n in small if n != c.nic.tap), small[0])
    return [_f("mtu.mismatch", "warning" if c.tap.mtu == low else "error", hop,
               f"MTU differs on {b.name}: {hop} has {low}, {c.nic.tap} {c.tap.mtu}: "
               "big frames are dropped",
               [Fact(", ".join(f"{n} {m}" for n, m in sorted(mtus.items())), "netlink")],
               f"ip link set {hop} mtu {max(mtus.values())}")]  # fmt: skip


def check_bridged_firewall(c: Nic) -> list[Finding]:
    b = c.bridge
    if b is None or c.network is None or c.network.mode != "bridge":
        return []
    if not c.facts.bridge_nf_call_iptables:
        return []
    probe = {"iif": b.name, "oif": b.name, "saddr": c.nic.ip or "0.0.0.0", "daddr": "198.51.100.1",
             "l4proto": 1}  # fmt: skip
    got = verdict_at(c.facts.ruleset, "forward", probe)
    if got.verdict == "accept":
        return []
    return [_f("firewall.bridged_dropped", "error", b.name,
               f"iptables drops {c.vm.name}'s bridged frames (br_netfilter passes them to FORWARD)",
               [Fact("net.bridge.bridge-nf-call-iptables = 1", "sysctl"),
                Fact(got.why, "nftables")],
               f"iptables -I FORWARD -i {b.name} -o {b.name} -j ACCEPT  (or DOCKER-USER); "
               "or sysctl net.bridge.bridge-nf-call-iptables=0")]  # fmt: skip


def check_routing(c: Nic) -> list[Finding]:
    n = c.network
    if n is None or n.mode not in _ROUTED or not n.active:
        return []
    out = []
    if c.snap.ip_forward is False:
        out.append(_f("nat.ip_forward_off", "error", None,
                      "IP forwarding is off: the host routes nothing for its VMs",
                      [Fact("net.ipv4.ip_forward = 0", "sysctl")],
                      "sysctl -w net.ipv4.ip_forward=1"))  # fmt: skip
    default = [r for r in c.snap.routes if r.dst == "default" and r.table == 254]
    if not default:
        out.append(_f("nat.no_default_route", "error", None,
                      "no default route: the host has no way to the Internet",
                      [Fact("main table has no default route", "netlink")],
                      "ip route add default via GATEWAY dev UPLINK"))  # fmt: skip
    elif default[0].dev in {b.name for b in c.snap.bridges if b.networks}:
        r = default[0]
        out.append(_f("nat.default_route_not_uplink", "error", r.dev,
                      f"the default route points into {r.dev}, a VM network, not an uplink",
                      [Fact(f"default via {r.gateway} dev {r.dev}", "netlink")],
                      "ip route replace default via GATEWAY dev UPLINK"))  # fmt: skip
    sub = _subnet(n)
    if n.mode == "nat" and n.nat_rule is False and sub is not None:
        out.append(_f("nat.masquerade_missing", "error", None,
                      f"no MASQUERADE rule for {sub}: replies to the VMs can never come back",
                      [Fact(n.nat_rule_evidence or f"no source NAT for {sub}", "nftables")],
                      f"virsh net-destroy {n.name} && virsh net-start {n.name}  (libvirt "
                      "re-adds its rules)"))  # fmt: skip
    if sub is not None and n.bridge and default:
        probe = {"iif": n.bridge, "oif": default[0].dev or "", "l4proto": 1,
                 "saddr": c.nic.ip or str(next(sub.hosts())), "daddr": "198.51.100.1"}  # fmt: skip
        got = verdict_at(c.facts.ruleset, "forward", probe)
        if got.verdict != "accept":
            out.append(_f("firewall.forward_drop", "error", n.bridge,
                          f"the FORWARD chain drops {c.vm.name}'s traffic before libvirt's accept "
                          "rules", [Fact(got.why, "nftables")],
                          f"iptables -I FORWARD -i {n.bridge} -j ACCEPT  (or in DOCKER-USER), "
                          "or remove the rule"))  # fmt: skip
    return out


def _in_range(net: Network) -> tuple[int, int]:
    """(addresses in the DHCP ranges, leases inside them)."""
    size = used = 0
    leased = {ipaddress.ip_address(le.ip) for le in net.leases if ":" not in le.ip}
    for a in net.addresses:
        for r in a.ranges:
            lo, hi = ipaddress.ip_address(r.start), ipaddress.ip_address(r.end)
            if lo.version != 4:
                continue
            size += int(hi) - int(lo) + 1
            used += sum(1 for ip in leased if int(lo) <= int(ip) <= int(hi))
    return size, used


def check_dhcp(c: Nic) -> list[Finding]:
    n = c.network
    if n is None or n.mode not in _DHCP_MODES or not n.active or not n.bridge:
        return []
    if not any(a.ranges or a.hosts for a in n.addresses):
        return []
    out = []
    dm = c.facts.dnsmasq_of(n.name)
    if c.facts.dnsmasq_read and dm is None:
        out.append(_f("dhcp.dnsmasq_down", "error", n.bridge,
                      f"network {n.name}'s dnsmasq is not running: no DHCP, no DNS for its VMs",
                      [Fact(f"no dnsmasq with {n.name}.conf in this namespace", "/proc")],
                      f"virsh net-destroy {n.name} && virsh net-start {n.name}"))  # fmt: skip
    elif dm is not None and dm.interfaces and n.bridge not in dm.interfaces:
        out.append(_f("dhcp.dnsmasq_unbound", "error", n.bridge,
                      f"dnsmasq of {n.name} listens on {', '.join(dm.interfaces)}, not {n.bridge}",
                      [Fact(f"pid {dm.pid} interface={','.join(dm.interfaces)}", dm.conf)],
                      f"virsh net-destroy {n.name} && virsh net-start {n.name}"))  # fmt: skip
    probe = {"iif": n.bridge, "l4proto": 17, "dport": 67, "saddr": "0.0.0.0",
             "daddr": "255.255.255.255"}  # fmt: skip
    got = verdict_at(c.facts.ruleset, "input", probe)
    if got.verdict != "accept":
        out.append(_f("firewall.dhcp_blocked", "error", n.bridge,
                      f"the host firewall {got.verdict}s DHCP (udp 67) arriving on {n.bridge}",
                      [Fact(got.why, "nftables")],
                      "remove that rule (iptables -D INPUT ...)"))  # fmt: skip
    size, used = _in_range(n)
    has_lease = any(le.mac == c.nic.mac for le in n.leases)
    if size and used >= size and not has_lease:
        out.append(_f("dhcp.range_exhausted", "error", n.bridge,
                      f"DHCP range of {n.name} is full ({used}/{size} leased)",
                      [Fact(f"{used} leases in {size} addresses", "libvirt")],
                      f"virsh net-edit {n.name}: widen <range>"))  # fmt: skip
    if not has_lease and c.nic.ip is None and c.vm.state == "running":
        out.append(_f("dhcp.no_lease", "warning", c.nic.tap,
                      f"{c.vm.name} has no DHCP lease from {n.name}",
                      [Fact(f"no lease for {c.nic.mac}", "libvirt")],
                      "in the guest: restart its DHCP client (dhclient -v eth0)"))  # fmt: skip
    return out


def check_mac(c: Nic) -> list[Finding]:
    mac = c.nic.mac
    out = []
    twins = [(v.name, n.tap) for v in c.snap.vms for n in v.nics
             if n.mac == mac and (v.name, n.tap) != (c.vm.name, c.nic.tap)]  # fmt: skip
    if twins:
        others = ", ".join(f"{v} ({t})" for v, t in twins)
        out.append(_f("mac.clash", "error", c.nic.tap,
                      f"MAC {mac} of {c.vm.name} is also used by {others}",
                      [Fact(f"{mac} on {c.vm.name} and {others}", "libvirt/netlink")],
                      "give one of them another MAC (virsh edit: <mac address=...>)"))  # fmt: skip
    if c.bridge is not None and c.tap is not None and c.tap.master == c.bridge.name:
        if c.look is not None:
            hits = c.look.fdb_of(c.bridge, mac)
        else:
            hits = [e for e in c.bridge.fdb if e.mac == mac]
        elsewhere = [e for e in hits if e.port != c.nic.tap and e.kind == "learned"]
        if elsewhere and not twins:
            out.append(_f("mac.clash", "error", c.nic.tap,
                          f"{c.bridge.name} learned {mac} on {elsewhere[0].port}, not on "
                          f"{c.nic.tap}: another machine uses this VM's MAC",
                          [Fact(f"FDB {mac} on {elsewhere[0].port}", "netlink")],
                          "find the other machine (kvmtui switch) and change one MAC"))  # fmt: skip
        elif not hits and c.tap.state in ("up", "unknown"):
            out.append(_f("guest.mac_not_learned", "warning", c.nic.tap,
                          f"{c.bridge.name} never learned {mac} on {c.nic.tap}: "
                          "the guest is silent or its link is down",
                          [Fact(f"no FDB entry for {mac}", "netlink")],
                          f"virsh domif-getlink {c.vm.name} {c.nic.tap}; check the guest's "
                          "network config"))  # fmt: skip
    return out


def check_ip(c: Nic) -> list[Finding]:
    ip = c.nic.ip
    if not ip:
        return []
    twins = [(v.name, n.mac) for v in c.snap.vms for n in v.nics
             if n.ip == ip and n.mac != c.nic.mac]  # fmt: skip
    if not twins:
        return []
    return [_f("ip.clash", "error", c.nic.tap,
               f"IP {ip} of {c.vm.name} is also answered by {twins[0][0]} ({twins[0][1]})",
               [Fact(f"{ip} at {c.nic.mac} and {twins[0][1]}", "libvirt/neighbours/wire")],
               "give one of them another address")]  # fmt: skip


def check_isolated(c: Nic) -> list[Finding]:
    n = c.network
    if n is None or n.mode != "isolated":
        return []
    return [_f("network.isolated", "info", n.bridge,
               f"{n.name} is isolated by design: VMs reach each other and the host, "
               "not the Internet",
               [Fact(f"network {n.name} has no <forward>", "libvirt")],
               "none needed; for Internet use a NAT or bridged network")]  # fmt: skip


CHECKS: tuple[Callable[[Nic], list[Finding]], ...] = (
    check_network, check_tap, check_wrong_bridge, check_bridge, check_port, check_uplink,
    check_vlans, check_mtu, check_bridged_firewall, check_routing, check_dhcp, check_mac, check_ip,
    check_isolated,
)  # fmt: skip


def _context(
    snap: HostSnapshot, facts: HostFacts, vm: Vm, nic: VmNic, look: Lookups | None = None
) -> Nic:
    path = next((p for p in snap.paths if p.vm == vm.name and p.mac == nic.mac), None)
    tap = snap.link(nic.tap) if nic.tap else None
    bridge = snap.bridge(tap.master) if tap is not None and tap.master else None
    port = next((p for p in bridge.ports if p.name == nic.tap), None) if bridge else None
    net = snap.network(nic.network) if nic.network else None
    if net is None and bridge is not None:
        net = next((n for n in snap.networks if n.bridge == bridge.name), None)
    return Nic(snap, facts, vm, nic, path, net, tap, bridge, port, look)


def diagnose_nic(
    snap: HostSnapshot, facts: HostFacts, vm: Vm, nic: VmNic, look: Lookups | None = None
) -> NicDiagnosis:
    c = _context(snap, facts, vm, nic, look)
    if vm.state != "running":
        found = check_running(c)
        return NicDiagnosis(vm.name, nic.mac, nic.network, nic.tap, "unknown", tuple(found))
    found = [f for check in CHECKS for f in check(c)]
    seen: set[tuple[str, str | None]] = set()
    unique = []
    for f in ranked(found):
        if (f.code, f.hop) not in seen:
            seen.add((f.code, f.hop))
            unique.append(f)
    return NicDiagnosis(vm.name, nic.mac, nic.network, nic.tap, verdict_of(unique), tuple(unique))


def diagnose(snap: HostSnapshot, facts: HostFacts) -> HostDiagnosis:
    """Ranked findings for every NIC of every VM (pure: no I/O)."""
    look = Lookups()
    vms = tuple(
        VmDiagnosis(v.name, tuple(diagnose_nic(snap, facts, v, n, look) for n in v.nics))
        for v in snap.vms
    )
    notes = tuple(facts.notes) + tuple(p.message for p in snap.problems)
    return HostDiagnosis(snap.hostname, snap.taken_at, vms, (), notes)


def diagnose_host(snap: HostSnapshot, uri: str | None = None) -> HostDiagnosis:
    return diagnose(snap, read_facts(snap, uri=uri))
