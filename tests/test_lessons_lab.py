"""``kvmtui lab lesson NAME`` on the real lab: each run does the seed's experiment and the
evidence printed under "observed" is kvmtui's own capture of it, not a canned text."""

from __future__ import annotations

import ipaddress
import re

import pytest
from labtools import lab_cli

from kvmtui.lab import spec
from kvmtui.lab.handle import LabHandle

pytestmark = pytest.mark.lab


def _lesson(lab: LabHandle, name: str) -> str:
    cp = lab_cli(lab.prefix, "lesson", name, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert "Traceback" not in cp.stdout + cp.stderr
    return cp.stdout


def _did(out: str) -> str:
    return next(ln for ln in out.splitlines() if ln.startswith("did: "))


def _rows(out: str, head: str) -> list[str]:
    """The observed rows (trace rows in the lesson's words) that start with ``head``."""
    observed = [ln.strip() for ln in out.split("\nobserved", 1)[1].splitlines()[1:]]
    return [ln for ln in observed if ln.startswith(head)]


def test_list_names_every_lesson_in_both_languages(lab: LabHandle) -> None:
    en = lab_cli(lab.prefix, "lesson").stdout.splitlines()
    vi = lab_cli(lab.prefix, "lesson", "--lang", "vi").stdout.splitlines()
    names = [ln.split()[0] for ln in en]
    assert names == [ln.split()[0] for ln in vi]
    assert {"bridged", "host-only", "nat", "dhcp", "no-bridge", "mac-learning"} <= set(names)
    assert en != vi  # the titles are translated


def test_host_only_fails_outside_and_works_next_door(lab: LabHandle) -> None:
    lab.wait_ip("iso-a")
    peer = lab.wait_ip("iso-b")
    out = _lesson(lab, "host-only")
    did = next(ln for ln in out.splitlines() if ln.startswith("did: "))
    assert f"pinged {spec.INTERNET_IP}: no reply" in did, out
    assert f"neighbour iso-b {peer}: replies" in did, out


def test_mac_learning_shows_a_flood_then_forwards(lab: LabHandle) -> None:
    lab.wait_ip("iso-a")
    ip_b = lab.wait_ip("iso-b")
    a, b = spec.lab_vm("iso-a"), spec.lab_vm("iso-b")
    # the switch view printed by the lesson, `kvmtui switch` text: "vnet2>others: vnet3 flood"
    # then the FDB entry's words on the next line
    flood = re.compile(rf"^\s*[\d.]+\s+{a.tap}>others: {b.tap}\s+flood\s+icmp \S+ > {ip_b}\n"
                       rf"\s+{b.mac} is not in the FDB: flood: every other port \({b.tap}\); the "
                       rf"bridge's own port {spec.ISO_BRIDGE} takes unknown unicast only when "
                       r"promiscuous$", re.M)  # fmt: skip
    forward = re.compile(rf"^\s*[\d.]+\s+{a.tap}>{b.tap}\s+forward\s+icmp \S+ > {ip_b}\n"
                         rf"\s+{b.mac} learned on {b.tap} \d+ s ago$", re.M)  # fmt: skip
    # iso-b talks by itself every few seconds: when it speaks between the flush and iso-a's
    # first ping, the bridge has re-learned it and nothing floods; run the lesson again then
    for _attempt in range(4):
        out = _lesson(lab, "mac-learning")
        observed = out.split("observed", 1)[1]
        # the first frame to iso-b flooded, a later one forwarded to its port only
        f = flood.search(observed)
        if f and forward.search(observed, f.end()):
            return
    raise AssertionError(f"no flood then forward in four runs of the lesson:\n{out}")


def test_dhcp_lesson_shows_dora_served_by_libvirts_dnsmasq(lab: LabHandle) -> None:
    lab.wait_ip("nat-light")
    out = _lesson(lab, "dhcp")
    observed = out.split("observed", 1)[1]
    for step in ("Discover", "Offer", "Request", "Ack"):
        assert step in observed, out
    assert "dnsmasq" in observed and spec.NAT_BRIDGE in observed, out


def test_bridged_keeps_the_lan_source_on_tap_bridge_and_ens9(lab: LabHandle) -> None:
    vm = spec.lab_vm("br-light")
    ip = lab.wait_ip(vm.name)
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(spec.LAN_SUBNET)  # the LAN's DHCP
    inet = spec.INTERNET_IP
    out = _lesson(lab, "bridged")
    did = _did(out)
    assert f"pinged {inet}: replies" in did, out
    assert f"no MASQUERADE/SNAT rule for {spec.LAN_SUBNET}" in did, out
    hops = f"{vm.tap} > {spec.BR_BRIDGE} > {spec.BR_NIC}"
    sent = _rows(out, f"out ICMP echo-request {ip} > {inet} ")
    back = _rows(out, f"in  ICMP echo-reply {inet} > {ip} ")
    # the same packet seen on the tap, the bridge and ens9, its source the VM's own LAN address
    assert any(r.endswith(f"seen on {hops}: source {ip} unchanged on {spec.BR_NIC} (no NAT)")
               for r in sent), out  # fmt: skip
    rev = f"{spec.BR_NIC} > {spec.BR_BRIDGE} > {vm.tap}"
    assert any(r.endswith(f"seen on {rev}: destination {ip} unchanged on {spec.BR_NIC} (no NAT)")
               for r in back), out  # fmt: skip
    assert not any("NAT " in r and "(no NAT)" not in r for r in sent + back), out


def test_nat_turns_the_vm_source_into_the_hosts_address_on_the_uplink(lab: LabHandle) -> None:
    vm = spec.lab_vm("nat-light")
    ip = lab.wait_ip(vm.name)
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(spec.NAT_SUBNET)
    inet, up = spec.INTERNET_IP, spec.UPLINK_IP
    out = _lesson(lab, "nat")
    did = _did(out)
    assert f"pinged {inet}: replies" in did, out
    # the rule that does it, named, and its counter moved while the VM pinged
    m = re.search(rf"the host's rule: MASQUERADE in nat \S+: {re.escape(spec.NAT_SUBNET)} -> "
                  rf"!{re.escape(spec.NAT_SUBNET)} \(\+(\d+) new connections?", did)  # fmt: skip
    assert m and int(m.group(1)) >= 1, out
    hops = f"{vm.tap} > {spec.NAT_BRIDGE} > {spec.UPLINK}"
    sent = re.compile(
        rf"out ICMP echo-request {re.escape(ip)} > {inet} id (\d+) seq \d+  seen on {hops}: "
        rf"NAT {re.escape(ip)}:(\d+) -> {re.escape(up)}:\d+: the host's address stands for the VM"
    )
    outs = [m for r in _rows(out, "out ") if (m := sent.match(r))]
    assert outs and all(m.group(1) == m.group(2) for m in outs), out  # the ICMP id is the port
    assert any(r.endswith("conntrack agrees") for r in _rows(out, "out ")), out
    rev = f"{spec.UPLINK} > {spec.NAT_BRIDGE} > {vm.tap}"
    assert any(f"seen on {rev}: NAT {up}:" in r and f"-> {ip}:" in r and
               "the reply translated back" in r for r in _rows(out, "in  ")), out  # fmt: skip
    assert not any("(no NAT)" in r for r in _rows(out, "")), out


def test_no_bridge_out_through_nat_not_in_from_outside_lan_reaches_bridged(
    lab: LabHandle,
) -> None:
    ip = lab.wait_ip("nat-light")
    br = lab.wait_ip("br-light")
    inet, up = spec.INTERNET_IP, spec.UPLINK_IP
    out = _lesson(lab, "no-bridge")
    did = _did(out)
    assert f"nat-light fetched http://{inet}/: ok" in did, out
    # even an Internet that knows the way through the host is turned away, by a named rule
    # that counted the pings
    m = re.search(rf"the Internet pinged nat-light {re.escape(ip)} through the host "
                  rf"{re.escape(up)}: no reply \(the host's firewall turned it away: "
                  rf"rule \d+ of ip filter (\S+): (.*?) -> (REJECT|DROP), (\d+) packets counted\)",
                  did)  # fmt: skip
    assert m and f"-o {spec.NAT_BRIDGE}" in m.group(2) and int(m.group(4)) >= 1, out
    assert f"the LAN's router {spec.LAN_ROUTER_IP} pinged br-light {br}: replies" in did, out
    # the fetch itself: its source is the host's address on the uplink
    hops = f"{spec.lab_vm('nat-light').tap} > {spec.NAT_BRIDGE} > {spec.UPLINK}"
    syn = [r for r in _rows(out, f"out TCP {ip}:") if f" > {inet}:80 " in r]
    assert any(f"seen on {hops}: NAT {ip}:" in r and f"-> {up}:" in r for r in syn), out
    # the lab is as it was: the Internet has no route to the NAT range
    routes = lab.run(lab.ns(spec.NS_INET), "ip", "route", "show", spec.NAT_SUBNET).stdout
    assert routes.strip() == "", routes


def test_unknown_lesson_is_one_line_exit_2(lab: LabHandle) -> None:
    cp = lab_cli(lab.prefix, "lesson", "no-such-lesson")
    assert cp.returncode == 2 and len(cp.stderr.strip().splitlines()) == 1, cp.stderr
