"""The netlink reader against namespaces built here and against iproute2's JSON as reference.

Every namespace is created under ``KVMTUI_NL_TEST_PREFIX`` (default ``kvB-``) plus a random
suffix, and removed by the fixtures whatever happens. Nothing touches the root namespace.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from kvmtui.core import nlfast, nlsock
from kvmtui.core.model import NetlinkState
from kvmtui.core.netlink import (
    NetlinkError,
    NetnsGone,
    link_kind,
    read_counters,
    read_fdb,
    read_links,
    read_netlink,
    read_peer_macs,
)
from kvmtui.core.nlfast import RawLink

PREFIX = os.environ.get("KVMTUI_NL_TEST_PREFIX", "kvB-")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, check=check)


def ipj(ns: str, *args: str) -> Any:
    return json.loads(sh("ip", "-n", ns, "-j", *args).stdout or "[]")


def bridgej(ns: str, *args: str) -> Any:
    return json.loads(sh("bridge", "-n", ns, "-j", *args).stdout or "[]")


def batch(ns: str, *lines: str) -> None:
    subprocess.run(
        ["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True
    )


def new_ns(tag: str) -> str:
    name = f"{PREFIX}{secrets.token_hex(3)}-{tag}"
    sh("ip", "netns", "add", name)
    return name


def del_ns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Topo:
    """Namespace ``a`` (the host under test), ``b`` (a veth peer's namespace), ``c`` (spare)."""

    def __init__(self) -> None:
        self.a = new_ns("a")
        self.b = new_ns("b")
        self.static_added_at = 0.0
        self.vlan = False
        self.ping_at = 0.0


@pytest.fixture(scope="module")
def topo() -> Iterator[Topo]:
    t = Topo()
    a, b = t.a, t.b
    try:
        batch(
            a,
            "link set lo up",
            # br0: no STP, the host's bridge with an uplink veth whose peer is in namespace b
            "link add br0 type bridge stp_state 0",
            f"link add ens9 type veth peer name eth0 netns {b}",
            "link set ens9 master br0",
            "tuntap add dev tap0 mode tap",
            "tuntap add dev tun0 mode tun",
            "link set tap0 master br0",
            "link add v1 type veth peer name v2",
            "link add link v1 name mv0 type macvlan",
            "link add link v2 name mt0 type macvtap",
            "link set br0 up",
            "link set ens9 up",
            "link set v1 up",
            "link set v2 up",
            "link set v1 promisc on",
            "addr add 10.9.0.2/24 dev br0",
            "route add default via 10.9.0.1",
            "neigh add 10.9.0.7 lladdr 02:00:00:00:00:07 dev br0 nud permanent",
            # brs: STP on, forward delay 4 s, one up port (listening, then learning)
            "link add brs type bridge stp_state 1 forward_delay 400",
            "link add s1 type veth peer name s1p",
            "link set s1 master brs",
            "link set brs up",
            "link set s1 up",
            "link set s1p up",
        )
        # brv: VLAN filtering and a static entry in VLAN 10, where the kernel has VLAN filtering
        vlan_cmd = ("ip", "-n", a, "link", "add", "brv", "type", "bridge", "vlan_filtering", "1")
        t.vlan = sh(*vlan_cmd, check=False).returncode == 0
        if t.vlan:
            batch(a, "link add p1 type veth peer name p1p", "link set p1 master brv",
                  "link set brv up", "link set p1 up", "link set p1p up")  # fmt: skip
            sh("bridge", "-n", a, "vlan", "add", "vid", "10", "dev", "p1")
        batch(b, "link set lo up", "link set eth0 up", "addr add 10.9.0.1/24 dev eth0")
        # a veth pair with the same ifindex on both sides (as the lab's wan0 has)
        sh("ip", "-n", a, "link", "add", "same0", "index", "77", "type", "veth", "peer", "name",
           "same1", "index", "77", "netns", b)  # fmt: skip
        sh("bridge", "-n", a, "link", "set", "dev", "tap0", "learning", "off", "flood", "off")
        sh("bridge", "-n", a, "fdb", "add", "52:54:00:00:00:01", "dev", "tap0", "master", "static")
        if t.vlan:
            sh("bridge", "-n", a, "fdb", "add", "52:54:00:00:00:0a", "dev", "p1", "master",
               "static", "vlan", "10")  # fmt: skip
        t.static_added_at = time.monotonic()
        sh("ip", "netns", "exec", a, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", b, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        # traffic from b through ens9: br0 learns eth0's MAC, a's ARP table gets 10.9.0.1
        t.ping_at = time.monotonic()
        sh("ip", "netns", "exec", b, "busybox", "ping", "-c", "2", "-W", "2", "10.9.0.2")
        yield t
    finally:
        del_ns(a)
        del_ns(b)


@pytest.fixture(scope="module")
def state(topo: Topo) -> NetlinkState:
    return read_netlink(topo.a)


def by_name(state: NetlinkState) -> dict[str, Any]:
    return {lk.name: lk for lk in state.links}


# --- links -----------------------------------------------------------------------------------


def test_links_match_ip_link(topo: Topo, state: NetlinkState) -> None:
    ref = ipj(topo.a, "-d", "link", "show")
    ours = by_name(state)
    assert set(ours) == {r["ifname"] for r in ref}
    for r in ref:
        lk = ours[r["ifname"]]
        assert lk.index == r["ifindex"]
        assert lk.mtu == r["mtu"]
        assert lk.state == r["operstate"].lower()
        assert lk.master == r.get("master")
        if r.get("link_type") != "none":
            assert lk.mac == r["address"]
        assert lk.flags_promisc == ("PROMISC" in r["flags"]), r["ifname"]
        if "link_netnsid" in r:  # peer/lower link in another namespace: its index there
            assert (lk.peer_netns_id, lk.peer_index) == (r["link_netnsid"], r.get("link_index"))
        elif r.get("link"):  # in this namespace: iproute2 names it
            assert lk.peer_index == ours[r["link"]].index and lk.peer_netns_id is None
        else:
            assert lk.peer_index is None, r["ifname"]


def test_link_kinds(state: NetlinkState) -> None:
    kinds = {lk.name: lk.kind for lk in state.links}
    assert kinds["lo"] == "loopback"
    assert kinds["br0"] == "bridge"
    assert kinds["brs"] == "bridge"
    assert kinds["ens9"] == "veth"
    assert kinds["v1"] == "veth"
    assert kinds["tap0"] == "tap"
    assert kinds["tun0"] == "tun"
    assert kinds["mv0"] == "macvlan"
    assert kinds["mt0"] == "macvtap"


@pytest.mark.parametrize(
    ("kind", "args"),
    [("dummy", ["type", "dummy"]), ("vlan", ["link", "v1", "type", "vlan", "id", "10"]),
     ("bond", ["type", "bond"])],
)  # fmt: skip
def test_optional_kinds(topo: Topo, kind: str, args: list[str]) -> None:
    name = f"k{kind}"
    r = sh("ip", "-n", topo.a, "link", "add", *(["link", args[1]] if args[0] == "link" else []),
           "name", name, *(args[2:] if args[0] == "link" else args), check=False)  # fmt: skip
    if r.returncode != 0:
        pytest.skip(f"this kernel cannot create a {kind} device: {r.stderr.strip()}")
    try:
        lk = next(lk for lk in read_links(topo.a) if lk.name == name)
        assert lk.kind == kind
        if kind == "vlan":
            assert lk.peer_index == by_name(read_netlink(topo.a))["v1"].index
    finally:
        sh("ip", "-n", topo.a, "link", "del", name, check=False)


def test_kind_mapping_of_decoded_links() -> None:
    """The kind rules on decoded records (no kernel involved: this kernel lacks the dummy,
    8021q and bonding drivers, so those kinds are also checked here, on RawLink values)."""
    assert link_kind(RawLink(index=1, kind="bond")) == "bond"
    assert link_kind(RawLink(index=1, kind="vlan")) == "vlan"
    assert link_kind(RawLink(index=1, kind="dummy")) == "dummy"
    assert link_kind(RawLink(index=1, kind="vxlan")) == "other"
    assert link_kind(RawLink(index=1, kind="tun", tun_type=nlsock.IFF_TAP)) == "tap"
    assert link_kind(RawLink(index=1, kind="tun", tun_type=nlsock.IFF_TUN)) == "tun"
    assert link_kind(RawLink(index=1, parent_dev="0000:00:03.0", arphrd=1)) == "physical"
    assert link_kind(RawLink(index=1, arphrd=1)) == "other"  # no kind, no parent device
    assert link_kind(RawLink(index=1, flags=nlsock.IFF_LOOPBACK, arphrd=772)) == "loopback"


def test_physical_device_of_the_current_namespace() -> None:
    """A real NIC (a parent device, no rtnl kind) is "physical". Read-only on this namespace."""
    ref = json.loads(sh("ip", "-j", "-d", "link", "show").stdout)
    with_parent = {r["ifname"] for r in ref if "parentdev" in r and "linkinfo" not in r}
    if not with_parent:
        pytest.skip("no device with a parent device in this namespace")
    kinds = {lk.name: lk.kind for lk in read_links(None)}
    for name in with_parent:
        assert kinds[name] == "physical"


def test_veth_peer_in_other_namespace(topo: Topo, state: NetlinkState) -> None:
    ens9 = by_name(state)["ens9"]
    ref = ipj(topo.a, "link", "show", "ens9")[0]
    peer_in_b = ipj(topo.b, "link", "show", "eth0")[0]
    assert ens9.peer_netns_id == ref["link_netnsid"]
    assert ens9.peer_index == peer_in_b["ifindex"]  # an ifindex in b, not looked up in a
    assert ens9.peer_netns == topo.b
    # the same ifindex in namespace a is some other device: nothing of it leaks into ens9
    same_index_in_a = [lk for lk in state.links if lk.index == ens9.peer_index]
    for other in same_index_in_a:
        assert other.name != "eth0"
    # same ifindex on both sides: the peer is index 77 *in b*, not the link itself
    same0 = by_name(state)["same0"]
    assert same0.index == 77 and same0.peer_index == 77
    assert same0.peer_netns == topo.b and same0.peer_netns_id == ens9.peer_netns_id
    # a veth whose peer is in the same namespace has no netns id, and its peer index is local
    v1, v2 = by_name(state)["v1"], by_name(state)["v2"]
    assert v1.peer_index == v2.index and v2.peer_index == v1.index
    assert v1.peer_netns_id is None and v1.peer_netns is None


def test_read_peer_macs(topo: Topo, state: NetlinkState) -> None:
    macs, problems = read_peer_macs(state.links)
    assert problems == ()
    assert macs["ens9"] == ipj(topo.b, "link", "show", "eth0")[0]["address"]
    assert macs["same0"] == ipj(topo.b, "link", "show", "same1")[0]["address"]
    assert "v1" not in macs  # its peer is here, not in another namespace
    gone = replace(by_name(state)["ens9"], peer_netns=f"{PREFIX}nonexistent")
    macs, problems = read_peer_macs([gone])
    assert macs == {} and len(problems) == 1 and "does not exist" in problems[0]


def test_peer_netns_unnamed(topo: Topo) -> None:
    """A peer in a namespace with no /run/netns name keeps its id, and no name is invented."""
    pid = subprocess.Popen(["unshare", "-n", "sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.readlink(f"/proc/{pid.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.02)
        sh("ip", "-n", topo.a, "link", "add", "anon0", "type", "veth", "peer", "name", "x0",
           "netns", str(pid.pid))  # fmt: skip
        lk = by_name(read_netlink(topo.a))["anon0"]
        assert lk.peer_netns_id is not None
        assert lk.peer_netns is None
    finally:
        pid.kill()
        pid.wait()
        sh("ip", "-n", topo.a, "link", "del", "anon0", check=False)


def test_addresses(topo: Topo, state: NetlinkState) -> None:
    ref = ipj(topo.a, "addr", "show")
    ours = by_name(state)
    for r in ref:
        want = sorted(f"{ai['local']}/{ai['prefixlen']}" for ai in r.get("addr_info", ()))
        assert sorted(ours[r["ifname"]].addresses) == want, r["ifname"]
    assert "10.9.0.2/24" in ours["br0"].addresses


def test_stats(topo: Topo, state: NetlinkState) -> None:
    ens9 = by_name(state)["ens9"]
    assert ens9.stats.rx_packets >= 2  # the pings from b came in through ens9
    assert ens9.stats.rx_bytes > ens9.stats.rx_packets * 40
    ref = ipj(topo.a, "-s", "link", "show", "ens9")[0]["stats64"]
    assert ens9.stats.rx_packets <= ref["rx"]["packets"]
    counters = read_counters(topo.a)
    assert set(counters) == {lk.name for lk in state.links}
    assert counters["ens9"].rx_packets >= ens9.stats.rx_packets
    assert counters["ens9"].tx_bytes >= ens9.stats.tx_bytes > 0


# --- bridges ---------------------------------------------------------------------------------


def test_bridge_ports(topo: Topo, state: NetlinkState) -> None:
    ports = dict(state.bridge_ports)
    ref = bridgej(topo.a, "-d", "link", "show")
    assert set(ports) == {r["ifname"] for r in ref}
    for r in ref:
        info = ports[r["ifname"]]
        assert info.stp_state == r["state"], r["ifname"]
        assert info.learning == r["learning"], r["ifname"]
        assert info.flooding == r["flood"], r["ifname"]
        assert info.priority == r["priority"] and info.cost == r["cost"]
    assert ports["ens9"].stp_state == "forwarding"
    assert ports["tap0"].stp_state == "disabled"  # no process behind the tap: it is down
    assert ports["tap0"].learning is False and ports["tap0"].flooding is False
    assert ports["s1"].stp_state in ("listening", "learning")  # STP on, 4 s forward delay


def test_bridge_stp(topo: Topo, state: NetlinkState) -> None:
    stp = {name: (on, delay) for name, on, delay in state.bridge_stp}
    assert stp["brs"] == (True, 4.0)
    assert stp["br0"][0] is False
    ref = ipj(topo.a, "-d", "link", "show", "br0")[0]["linkinfo"]["info_data"]
    assert stp["br0"][1] == ref["forward_delay"] / 100


def _ref_fdb(ns: str, bridge: str | None = None) -> set[tuple[str, str, int | None, str]]:
    args = ["fdb", "show"] + (["br", bridge] if bridge else [])
    kinds = {"static": "static", "permanent": "permanent", "": "learned"}
    return {
        (r["mac"], r["ifname"], r.get("vlan"), kinds[r.get("state", "")])
        for r in bridgej(ns, *args)
        if "master" in r and "self" not in r.get("flags", ())
    }


def test_fdb_matches_bridge_fdb_show(topo: Topo, state: NetlinkState) -> None:
    ours = {(f.mac, f.port, f.vlan, f.kind) for f in state.fdb}
    assert ours == _ref_fdb(topo.a)
    bridges = {f.bridge for f in state.fdb}
    assert bridges == ({"br0", "brs", "brv"} if topo.vlan else {"br0", "brs"})


def test_fdb_kinds_and_age(topo: Topo, state: NetlinkState) -> None:
    fdb = {(f.mac, f.port): f for f in state.fdb}
    eth0_mac = ipj(topo.b, "link", "show", "eth0")[0]["address"]
    learned = fdb[(eth0_mac, "ens9")]
    assert learned.kind == "learned" and learned.bridge == "br0"
    since_ping = time.monotonic() - topo.ping_at
    assert learned.age_s is not None and 0 <= learned.age_s <= since_ping + 0.5
    static = fdb[("52:54:00:00:00:01", "tap0")]
    assert static.kind == "static"
    since_add = time.monotonic() - topo.static_added_at
    assert static.age_s is not None and 0 <= static.age_s <= since_add + 0.5
    tap0 = by_name(state)["tap0"]
    own = fdb[(tap0.mac, "tap0")]
    assert own.kind == "permanent"


def test_fdb_vlan(topo: Topo, state: NetlinkState) -> None:
    if not topo.vlan:
        pytest.skip("this kernel has no bridge VLAN filtering (see test_fdb_vlan_decoding)")
    vlan = next(f for f in state.fdb if f.mac == "52:54:00:00:00:0a")
    assert vlan.vlan == 10 and vlan.bridge == "brv" and vlan.port == "p1"


class _ReplaySocket:
    """Stands in for the kernel socket (this kernel lacks bridge VLAN filtering, so it cannot
    produce an FDB entry with NDA_VLAN): replays FDB messages laid out as br_fdb_fill_info
    writes them, with the request's sequence number."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages
        self.seq = 0
        self.sent = b""

    def send(self, data: bytes) -> int:
        self.sent = data
        self.seq = int.from_bytes(data[8:12], "little")
        return len(data)

    def recv(self, _n: int) -> bytes:
        import struct

        out = b""
        for body, mtype in [*((m, nlsock.RTM_NEWNEIGH) for m in self.messages),
                            (b"\0\0\0\0", nlsock.NLMSG_DONE)]:  # fmt: skip
            out += struct.pack("=IHHII", 16 + len(body), mtype, 2, self.seq, 0) + body
        return out


def _fdb_msg(mac: str, port: int, state: int, vlan: int | None, ext: bool = True) -> bytes:
    import struct

    body = struct.pack("=BxxxiHBB", nlsock.AF_BRIDGE, port, state, nlsock.NTF_MASTER, 0)
    body += nlsock.nla(nlsock.NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
    body += nlsock.nla(nlsock.NDA_MASTER, struct.pack("=I", 2))
    if ext:
        body += nlsock.nla(15, struct.pack("=I", 0))  # NDA_FLAGS_EXT
    body += nlsock.nla(nlsock.NDA_CACHEINFO, struct.pack("=IIII", 0, 10, 250, 0))
    if vlan is not None:
        body += nlsock.nla(nlsock.NDA_VLAN, struct.pack("=H", vlan))
    return body


def test_fdb_vlan_decoding() -> None:
    """Both decoder paths (the fixed-layout fast path and the generic one) read NDA_VLAN,
    kind and age from messages in the kernel's layout."""
    msgs = [
        _fdb_msg("52:54:00:00:00:0a", 3, nlsock.NUD_NOARP, 10),  # fast path
        _fdb_msg("52:54:00:00:00:0b", 3, nlsock.NUD_REACHABLE, 20, ext=False),  # generic
        _fdb_msg("52:54:00:00:00:0c", 4, nlsock.NUD_PERMANENT, None),
    ]
    conn = nlsock.NlConn(_ReplaySocket(msgs))  # type: ignore[arg-type]
    recs = nlfast.dump_fdb(conn, 2, names={3: "p1", 4: "p2"}, bridge_name="brv")
    got = [(r.mac, r.port, r.vlan, r.kind, r.age_s, r.bridge) for r in recs]
    assert got == [
        ("52:54:00:00:00:0a", "p1", 10, "static", 2.5, "brv"),
        ("52:54:00:00:00:0b", "p1", 20, "learned", 2.5, "brv"),
        ("52:54:00:00:00:0c", "p2", None, "permanent", 2.5, "brv"),
    ]


def test_read_fdb_one_bridge(topo: Topo, state: NetlinkState) -> None:
    br0 = read_fdb(topo.a, "br0")
    assert {f.bridge for f in br0} == {"br0"}
    assert {(f.mac, f.port, f.vlan, f.kind) for f in br0} == _ref_fdb(topo.a, "br0")
    assert {(f.mac, f.port) for f in read_fdb(topo.a)} == {(f.mac, f.port) for f in state.fdb}
    with pytest.raises(NetlinkError, match="no bridge named 'nope'"):
        read_fdb(topo.a, "nope")
    on_ens9 = read_fdb(topo.a, "br0", port="ens9")
    assert on_ens9 and {f.port for f in on_ens9} == {"ens9"}
    assert {(f.mac, f.kind) for f in on_ens9} == {(f.mac, f.kind) for f in br0 if f.port == "ens9"}
    with pytest.raises(NetlinkError, match="'v1' is not a port of bridge 'br0'"):
        read_fdb(topo.a, "br0", port="v1")


# --- L3 --------------------------------------------------------------------------------------


def test_neighbours(topo: Topo, state: NetlinkState) -> None:
    ours = {(n.ip, n.mac, n.dev, n.state) for n in state.neighbours}
    ref = {
        (r["dst"], r.get("lladdr", ""), r["dev"], r["state"][0].lower())
        for r in ipj(topo.a, "neigh", "show")
        if "NOARP" not in r["state"]
    }
    # states can move (reachable -> stale) between the two reads: compare without them first
    assert {o[:3] for o in ours} == {r[:3] for r in ref}
    eth0_mac = ipj(topo.b, "link", "show", "eth0")[0]["address"]
    assert ("10.9.0.7", "02:00:00:00:00:07", "br0", "permanent") in ours
    assert any(ip == "10.9.0.1" and mac == eth0_mac for ip, mac, _d, _s in ours)


def test_routes(topo: Topo, state: NetlinkState) -> None:
    default = [r for r in state.routes if r.dst == "default"]
    assert len(default) == 1 and default[0].dev == "br0" and default[0].gateway == "10.9.0.1"
    ref = ipj(topo.a, "route", "show", "table", "main")
    ours4 = {(r.dst, r.dev, r.gateway) for r in state.routes if ":" not in r.dst}
    ours4.discard(("default", "br0", "10.9.0.1"))
    want = {(r["dst"], r.get("dev"), r.get("gateway")) for r in ref if r["dst"] != "default"}
    assert ours4 == want
    assert all(r.table == 254 for r in state.routes)


def test_ip_forward_per_namespace(topo: Topo) -> None:
    assert read_netlink(topo.a).ip_forward is True
    assert read_netlink(topo.b).ip_forward is False


# --- failures --------------------------------------------------------------------------------


def test_missing_namespace_is_one_clear_line() -> None:
    name = f"{PREFIX}nonexistent"
    for fn in (read_netlink, read_links, read_counters, read_fdb):
        with pytest.raises(NetnsGone) as exc:
            fn(name)
        assert str(exc.value) == f"network namespace {name!r} does not exist"


def test_namespace_vanishing_mid_read() -> None:
    """Delete a namespace with many links while it is being read: each read either returns a
    whole state or raises NetlinkError with one line; nothing else escapes."""
    ns = new_ns("gone")
    try:
        batch(ns, *[f"link add g{i} type veth peer name h{i}" for i in range(150)])
        outcomes: list[object] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                try:
                    outcomes.append(read_netlink(ns))
                except NetlinkError as exc:
                    outcomes.append(exc)
                except Exception as exc:  # what the test is about: nothing else may escape
                    outcomes.append(("unexpected", exc))
                    return

        th = threading.Thread(target=reader)
        th.start()
        time.sleep(0.3)
        del_ns(ns)
        time.sleep(0.3)
        stop.set()
        th.join(10)
        assert not [o for o in outcomes if isinstance(o, tuple)]
        states = [o for o in outcomes if isinstance(o, NetlinkState)]
        errors = [o for o in outcomes if isinstance(o, NetlinkError)]
        assert states and errors
        assert all(len(s.links) == 301 for s in states)  # whole reads only
        assert all("\n" not in str(e) and ns in str(e) for e in errors)
    finally:
        del_ns(ns)


_AS_NOBODY = """
import json, sys
from kvmtui.core.netlink import NetlinkError, read_netlink
own = read_netlink(None)
try:
    read_netlink(sys.argv[1])
    other = "read"
except NetlinkError as exc:
    other = str(exc)
print(json.dumps({"links": [lk.name for lk in own.links], "fwd": own.ip_forward, "other": other}))
"""


def test_without_root(topo: Topo) -> None:
    """Dropped to nobody in a subprocess: the own namespace still reads; entering another
    namespace fails with one line saying why."""

    def drop() -> None:
        os.setgid(65534)
        os.setuid(65534)

    import sys

    r = subprocess.run(
        [sys.executable, "-c", _AS_NOBODY, topo.a],
        capture_output=True, text=True, preexec_fn=drop, cwd="/", timeout=60,
        env={"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["links"]) == {lk.name for lk in read_links(None)}
    assert out["fwd"] in (True, False)
    assert out["other"].startswith(f"cannot enter network namespace {topo.a!r}")
    assert "\n" not in out["other"] and "Traceback" not in r.stderr


# --- on the lab ------------------------------------------------------------------------------


@pytest.mark.lab
def test_lab_host_namespace(lab: Any) -> None:
    """The lab's KVM host as the lab built it: bridges, uplink, ports with their VMs' peer
    namespaces, taps of the QEMU guests, guest MACs learned on their ports, ip_forward."""
    from kvmtui.lab import spec

    st = read_netlink(lab.host_ns)
    links = by_name(st)
    for br in (spec.NAT_BRIDGE, spec.ISO_BRIDGE, spec.BR_BRIDGE):
        assert links[br].kind == "bridge"
    uplink = links[spec.UPLINK]
    assert uplink.kind == "veth" and uplink.peer_netns == lab.ns(spec.NS_INET)
    assert spec.UPLINK_CIDR in uplink.addresses
    assert [r.dev for r in st.routes if r.dst == "default"] == [spec.UPLINK]
    nic = links[spec.BR_NIC]
    assert nic.master == spec.BR_BRIDGE and nic.peer_netns == lab.ns(spec.NS_LAN)
    assert st.ip_forward is True
    ports = dict(st.bridge_ports)
    for vm in lab.vms:
        if vm.kind == "light":
            tap = links[vm.tap]
            assert tap.kind == "veth" and tap.peer_netns == lab.vm_ns(vm.name)
        else:
            tap = next(lk for lk in st.links if lk.mac == vm.tap_mac)
            assert tap.kind == "tap"
        assert tap.master == vm.bridge and tap.mac == vm.tap_mac
        assert ports[tap.name].stp_state == "forwarding"
    # the guests keep pinging: each guest MAC is learned on its own port (allow a few seconds)
    deadline = time.monotonic() + 20
    while True:
        fdb = {(f.mac, f.bridge): f for f in read_fdb(lab.host_ns)}
        missing = [vm.name for vm in lab.vms if (vm.mac, vm.bridge) not in fdb]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not missing, f"guest MACs never learned: {missing}"
    for vm in lab.vms:
        entry = fdb[(vm.mac, vm.bridge)]
        assert entry.kind == "learned" and entry.age_s is not None and entry.age_s < 300
        assert links[entry.port].mac == vm.tap_mac
    lan_router = fdb.get((spec.LAN_ROUTER_MAC, spec.BR_BRIDGE))
    if lan_router is not None:
        assert lan_router.port == spec.BR_NIC
