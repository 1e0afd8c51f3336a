"""The NAT check against real nftables rules in a namespace of our own: rules written by the
iptables binary (iptables-nft, as libvirt 9 does) and a native nft ruleset, read back through
pyroute2's nfnetlink socket and decoded."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from kvmtui.core.firewall import nft_value, read_firewall

PREFIX = "kvC-"


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"{PREFIX}fw{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def sh(ns: str, script: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "sh", "-ec", script], check=True)


def test_libvirt_style_iptables_nft_rules(ns: str) -> None:
    # the rules libvirt 9.0 adds for the "default" NAT network (LIBVIRT_PRT)
    sh(
        ns,
        """
        iptables -t nat -N LIBVIRT_PRT
        iptables -t nat -A POSTROUTING -j LIBVIRT_PRT
        iptables -t nat -A LIBVIRT_PRT -s 192.168.122.0/24 -d 224.0.0.0/24 -j RETURN
        iptables -t nat -A LIBVIRT_PRT -s 192.168.122.0/24 -d 255.255.255.255/32 -j RETURN
        for p in tcp udp; do
          iptables -t nat -A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -p $p \
            -j MASQUERADE --to-ports 1024-65535
        done
        iptables -t nat -A LIBVIRT_PRT -s 192.168.122.0/24 ! -d 192.168.122.0/24 -j MASQUERADE
        iptables -t nat -A POSTROUTING -s 10.8.16.0/20 -j SNAT --to-source 198.51.100.2
        """,
    )
    fw = read_firewall(ns)
    assert fw.read_ok and fw.problems == ()
    kinds = sorted((r.action, r.saddr, r.l4proto or 0) for r in fw.nat_rules)
    assert kinds == [
        ("MASQUERADE", "192.168.122.0/24", 0),
        ("MASQUERADE", "192.168.122.0/24", 6),
        ("MASQUERADE", "192.168.122.0/24", 17),
        ("SNAT", "10.8.16.0/20", 0),  # a non-byte-aligned prefix: payload + bitwise mask
    ]
    ok, evidence = fw.nat_for("192.168.122.0/24")
    assert ok is True
    # the all-protocols rule is the evidence, with its negated destination
    assert evidence.startswith(
        "MASQUERADE in nat LIBVIRT_PRT: 192.168.122.0/24 -> !192.168.122.0/24"
    )
    assert fw.nat_for("192.168.100.0/24") == (False, "no MASQUERADE/SNAT rule for 192.168.100.0/24")
    assert fw.nat_for("10.8.17.0/24")[0] is True  # inside the /20
    assert fw.nat_for("10.8.32.0/24")[0] is False


def test_native_nft_masquerade(ns: str) -> None:
    sh(
        ns,
        """
        nft add table inet kvc
        nft add chain inet kvc post '{ type nat hook postrouting priority srcnat; }'
        nft add rule inet kvc post ip saddr 172.30.0.0/16 oifname "wan0" masquerade
        nft add rule inet kvc post ip saddr 172.31.5.0/24 snat ip to 198.51.100.7
        """,
    )
    fw = read_firewall(ns)
    got = sorted((r.table, r.action, r.saddr) for r in fw.nat_rules)
    assert got == [("kvc", "MASQUERADE", "172.30.0.0/16"), ("kvc", "SNAT", "172.31.5.0/24")]
    assert fw.nat_for("172.30.9.0/24")[0] is True


def test_empty_ruleset_means_no_nat(ns: str) -> None:
    fw = read_firewall(ns)
    assert fw.read_ok and fw.nat_rules == ()
    assert fw.nat_for("192.168.122.0/24")[0] is False


def test_nft_value_reads_a_cmp_and_a_mask_in_both_pyroute2_forms() -> None:
    # one reader for both: the bytes form, pyroute2's hex string form, absent, unreadable
    cmp = {"NFTA_CMP_DATA": {"attrs": [("NFTA_DATA_VALUE", b"\xc0\xa8\x7a")]}}
    mask = {"NFTA_BITWISE_MASK": {"attrs": [("NFTA_DATA_VALUE", "ff:ff:00:00")]}}
    assert nft_value(cmp, "NFTA_CMP_DATA") == b"\xc0\xa8\x7a"
    assert nft_value(mask, "NFTA_BITWISE_MASK") == b"\xff\xff\x00\x00"
    assert nft_value(mask, "NFTA_CMP_DATA") is None
    assert (
        nft_value({"NFTA_CMP_DATA": {"attrs": [("NFTA_DATA_VALUE", "zz")]}}, "NFTA_CMP_DATA")
        is None
    )
