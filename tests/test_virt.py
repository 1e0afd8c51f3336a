"""The libvirt reader on libvirt's test driver (no daemon): every forward mode, domains running
and shut off, NIC details; and the one-line problems when libvirt cannot be reached."""

from __future__ import annotations

import os

import pytest

from kvmtui.core.virt import parse_network_xml, read_virt

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "libvirt-node.xml")
URI = f"test://{FIXTURE}"


@pytest.fixture(scope="module")
def virt():  # type: ignore[no-untyped-def]
    v = read_virt(URI)
    assert v.connected and v.problems == ()
    return v


def test_every_forward_mode(virt) -> None:  # type: ignore[no-untyped-def]
    modes = {n.name: (n.mode, n.bridge, n.forward_dev) for n in virt.networks}
    assert modes == {
        "default": ("nat", "virbr0", None),
        "routed": ("route", "virbr2", "eth1"),
        "opennet": ("open", "virbr3", None),
        "hostonly": ("isolated", "virbr1", None),
        "bridged": ("bridge", "br0", None),
        "mv-private": ("private", None, "eth2"),
        "mv-vepa": ("vepa", None, "eth3"),
        "mv-passthrough": ("passthrough", None, "eth4"),
        "sriov": ("hostdev", None, "eth5"),
    }
    assert all(n.active for n in virt.networks)


def test_addresses_ranges_and_static_hosts(virt) -> None:  # type: ignore[no-untyped-def]
    d = next(n for n in virt.networks if n.name == "default")
    v4, v6 = d.addresses
    assert (v4.address, v4.prefix, v4.family) == ("192.168.122.1", 24, "ipv4")  # from netmask
    assert [(r.start, r.end) for r in v4.ranges] == [("192.168.122.2", "192.168.122.254")]
    assert [(h.mac, h.ip, h.name) for h in v4.hosts] == [
        ("52:54:00:aa:00:09", "192.168.122.9", "pinned")
    ]
    assert (v6.address, v6.prefix, v6.family) == ("fd00:122::1", 64, "ipv6")
    r = next(n for n in virt.networks if n.name == "routed")
    assert r.addresses[0].prefix == 24 and r.addresses[0].ranges == ()
    # the test driver has no DHCP leases: no leases and no problem
    assert d.leases == ()
    assert d.vms == ("web1",)


def test_domains_state_and_nics(virt) -> None:  # type: ignore[no-untyped-def]
    doms = {v.name: v for v in virt.domains}
    assert {k: v.state for k, v in doms.items()} == {
        "web1": "running", "iso1": "running", "off1": "shut off",
    }  # fmt: skip
    web = doms["web1"]
    assert web.kind == "libvirt" and web.domain_id is not None
    n0, n1 = web.nics
    # MACs are lower-cased (the fixture writes one in upper case)
    assert (n0.mac, n0.type, n0.model, n0.network, n0.bridge) == (
        "52:54:00:aa:00:01", "network", "virtio", "default", None,
    )  # fmt: skip
    assert (n1.mac, n1.type, n1.model, n1.network, n1.bridge) == (
        "52:54:00:aa:00:02", "bridge", "e1000", None, "br0",
    )  # fmt: skip
    assert n0.tap and n1.tap and n0.tap != n1.tap  # the test driver's testnetN targets
    off = doms["off1"]
    assert off.domain_id is None and all(n.tap is None for n in off.nics)
    assert [n.network for n in off.nics] == ["routed", "mv-private"]


def test_unreachable_daemon_is_one_actionable_line() -> None:
    uri = "qemu:///system?socket=/nonexistent/kvC/libvirt-sock"
    v = read_virt(uri)
    assert not v.connected and v.networks == () and v.domains == ()
    (p,) = v.problems
    assert p.source == "libvirt"
    assert p.message.startswith(f"libvirt: cannot connect to {uri} (")
    assert p.message.endswith("is libvirtd running? Try -c URI")
    assert "\n" not in p.message


def test_isolated_without_forward_and_unknown_mode() -> None:
    n = parse_network_xml("<network><name>x</name><bridge name='b'/></network>")
    assert n.mode == "isolated"
    n = parse_network_xml("<network><name>y</name><forward mode='weird'/></network>")
    assert n.mode == "unknown"
    n = parse_network_xml("<network><name>z</name><forward/></network>")
    assert n.mode == "nat"  # libvirt's default forward mode
