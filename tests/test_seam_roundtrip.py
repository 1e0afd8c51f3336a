"""A HostSnapshot decodes from its own ``inventory --json`` and round-trips unchanged."""

from __future__ import annotations

import json

import pytest

from kvmtui.core.jsondecode import DecodeError, decode_snapshot
from kvmtui.core.jsonout import snapshot_json
from kvmtui.core.model import (
    Bridge,
    DhcpHost,
    DhcpRange,
    Evidence,
    FdbEntry,
    Hop,
    HostSnapshot,
    Lease,
    Link,
    LinkStats,
    MacOwner,
    Neighbour,
    NetAddress,
    Network,
    NicPath,
    Port,
    Problem,
    Route,
    Vm,
    VmNic,
)
from kvmtui.lab.handle import LabHandle


def hand_built() -> HostSnapshot:
    owner = MacOwner("vm", "web1", nic="vnet0", ip="192.168.122.10", ip_source="lease")
    return HostSnapshot(
        taken_at=1764700000.25,
        hostname="kvm1",
        links=(
            Link(1, "lo", "loopback", "unknown", "00:00:00:00:00:00", 65536),
            Link(
                7,
                "vnet0",
                "tap",
                "up",
                "fe:54:00:01:02:03",
                1500,
                master="virbr0",
                master_index=5,
                peer_index=None,
                addresses=("fe80::1/64",),
                stats=LinkStats(1, 2, 3, 4, 5, 6),
                flags_promisc=True,
            ),
            Link(
                9,
                "veth1",
                "veth",
                "up",
                "aa:bb:cc:00:00:01",
                1500,
                peer_index=2,
                peer_netns_id=3,
                peer_netns="lan",
            ),
        ),
        bridges=(
            Bridge(
                "virbr0",
                5,
                "52:54:00:aa:bb:cc",
                "up",
                stp=True,
                forward_delay_s=2.0,
                addresses=("192.168.122.1/24",),
                networks=("default",),
                uplinks=("eth0",),
                ports=(
                    Port(
                        "vnet0",
                        7,
                        "tap",
                        "up",
                        "forwarding",
                        True,
                        False,
                        "fe:54:00:01:02:03",
                        "VM web1",
                        "web1",
                        None,
                    ),
                ),
                fdb=(
                    FdbEntry("52:54:00:01:02:03", "vnet0", 10, "learned", 1.5, owner),
                    FdbEntry(
                        "52:54:00:ff:ff:ff", "vnet0", None, "static", None, MacOwner("unknown", "")
                    ),
                ),
            ),
        ),
        networks=(
            Network(
                "default",
                "u-1",
                "nat",
                "virbr0",
                True,
                False,
                addresses=(
                    NetAddress(
                        "192.168.122.1",
                        24,
                        ranges=(DhcpRange("a", "b"),),
                        hosts=(DhcpHost(None, "192.168.122.5", "x"),),
                    ),
                ),
                leases=(Lease("52:54:00:01:02:03", "192.168.122.10", 24, "web1", 17647, "id"),),
                forward_dev="eth0",
                nat_rule=True,
                nat_rule_evidence="nft masquerade",
                vms=("web1",),
            ),
        ),
        vms=(
            Vm(
                "web1",
                "uu",
                "running",
                (
                    VmNic(
                        "52:54:00:01:02:03",
                        "network",
                        "virtio",
                        "default",
                        "virbr0",
                        "vnet0",
                        "192.168.122.10",
                        "wire",
                        17.5,
                    ),
                ),
                3,
                1234,
            ),
            Vm("light", "", "running", kind="light"),
        ),
        neighbours=(Neighbour("192.168.122.10", "52:54:00:01:02:03", "virbr0", "reachable"),),
        routes=(Route("default", "eth0", "10.0.0.1", 254, "10.0.0.2"), Route("10/8", None)),
        uplink="eth0",
        ip_forward=True,
        libvirt_uri="qemu:///system",
        problems=(Problem("libvirt", "libvirt: x"),),
        paths=(
            NicPath(
                "web1",
                "52:54:00:01:02:03",
                "nat",
                (
                    Hop("vnet0", "tap", (Evidence("port state", "forwarding", True),), True),
                    Hop(None, "nat"),
                ),
                True,
                "NAT to eth0",
            ),
        ),
    )


def test_hand_built_snapshot_round_trips_unchanged() -> None:
    snap = hand_built()
    doc = json.loads(json.dumps(snapshot_json(snap)))
    back = decode_snapshot(doc)
    assert back == snap
    assert snapshot_json(back) == doc


def test_empty_snapshot_round_trips() -> None:
    snap = HostSnapshot(taken_at=0.0, hostname="")
    assert decode_snapshot(snapshot_json(snap)) == snap


@pytest.mark.parametrize(
    "doc",
    [[], "x", {"host": "h"}, {"schema": 99, "taken_at": 1, "host": "h"},
     {"schema": 1, "taken_at": 1, "host": "h", "bridges": [{"name": "b"}]},
     {"schema": 1, "taken_at": "soon", "host": "h"},
     {"schema": 1, "taken_at": 1, "host": "h", "links": "eth0"}],
)  # fmt: skip
def test_foreign_documents_raise_decode_error(doc: object) -> None:
    with pytest.raises(DecodeError):
        decode_snapshot(doc)


@pytest.mark.lab
def test_lab_snapshot_round_trips_unchanged(lab: LabHandle) -> None:
    from kvmtui.core.snapshot import read_host

    snap = read_host(uri=lab.uri, netns=lab.host_ns)
    assert snap.bridges and snap.networks and snap.vms and snap.paths
    doc = json.loads(json.dumps(snapshot_json(snap)))
    back = decode_snapshot(doc)
    assert back == snap
    assert snapshot_json(back) == doc
