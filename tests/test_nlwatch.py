"""The netlink watcher on real namespaces: what it reports, how fast, bursts, overruns, stop.

Changes are made over netlink from this process (timed from just before the request) so the
delays measured are the watcher's, not a subprocess's start-up. Namespaces are created under
``KVMTUI_NL_TEST_PREFIX`` (default ``kvB-``) and removed by the fixture.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from kvmtui.core import nlfast, nlsock
from kvmtui.core.netlink import NetnsGone, apply_fdb_changes, read_fdb
from kvmtui.core.nlwatch import ALL_KINDS, FdbChange, NetlinkWatcher

PREFIX = os.environ.get("KVMTUI_NL_TEST_PREFIX", "kvB-")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

_NDMSG = struct.Struct("=BxxxiHBB")
_IFINFO = struct.Struct("=BxHiII")


class Recorder:
    """on_change that records (time, kinds) and lets a test wait for a kind."""

    def __init__(self, block_first_s: float = 0.0) -> None:
        self.calls: list[tuple[float, frozenset[str]]] = []
        self.cond = threading.Condition()
        self.block_first_s = block_first_s

    def __call__(self, kinds: frozenset[str]) -> None:
        with self.cond:
            first = not self.calls
            self.calls.append((time.perf_counter(), kinds))
            self.cond.notify_all()
        if first and self.block_first_s:
            time.sleep(self.block_first_s)  # the watcher's thread is stuck here meanwhile

    def wait_for(
        self, kind: str, since: float, timeout: float = 2.0
    ) -> tuple[float, frozenset[str]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, kinds in self.calls:
                    if t >= since and kind in kinds:
                        return t, kinds
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {kind!r} change reported within {timeout} s")
                self.cond.wait(left)

    def quiet(self, for_s: float = 0.3, timeout: float = 5.0) -> None:
        """Wait until no callback came for ``for_s``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = len(self.calls)
            time.sleep(for_s)
            if len(self.calls) == n:
                return
        raise AssertionError("the watcher never went quiet")


class Ns:
    def __init__(self) -> None:
        self.name = f"{PREFIX}{secrets.token_hex(3)}-w"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        lines = [
            "link set lo up",
            "link add br0 type bridge stp_state 0",
            "link add p0 type veth peer name q0",
            "link set p0 master br0",
            "link set br0 up",
            "link set p0 up",
            "link set q0 up",
            "addr add 10.7.0.1/24 dev br0",
        ]
        subprocess.run(
            ["ip", "-n", self.name, "-batch", "-"], input="\n".join(lines) + "\n", text=True,
            check=True,
        )  # fmt: skip
        self.handle = nlsock.NsHandle(self.name)
        self.conn = nlsock.NlConn.open(self.handle)
        links = {rl.name: rl.index for rl in nlfast.dump_links(self.conn)}
        self.br0 = links["br0"]
        self.p0 = links["p0"]

    def close(self) -> None:
        self.conn.close()
        self.handle.close()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def fdb_msg(self, mac: bytes, flags: int) -> bytes:
        body = _NDMSG.pack(nlsock.AF_BRIDGE, self.p0, nlsock.NUD_NOARP, nlsock.NTF_MASTER, 0)
        body += nlsock.nla(nlsock.NDA_LLADDR, mac)
        return struct.pack("=IHHII", 16 + len(body), nlsock.RTM_NEWNEIGH, flags, 0, 0) + body

    def add_fdb(self, mac: bytes) -> None:
        body = _NDMSG.pack(nlsock.AF_BRIDGE, self.p0, nlsock.NUD_NOARP, nlsock.NTF_MASTER, 0)
        body += nlsock.nla(nlsock.NDA_LLADDR, mac)
        self.conn.request(nlsock.RTM_NEWNEIGH, body, nlsock.NLM_F_CREATE | nlsock.NLM_F_EXCL)

    def add_fdb_burst(self, n: int, tag: int) -> list[str]:
        """n static entries sent without waiting for replies, 200 per datagram."""
        flags = nlsock.NLM_F_REQUEST | nlsock.NLM_F_CREATE | nlsock.NLM_F_EXCL
        macs = [bytes((0x02, 0xAB, tag, 0, i >> 8, i & 255)) for i in range(n)]
        for i in range(0, n, 200):
            self.conn.sock.send(b"".join(self.fdb_msg(m, flags) for m in macs[i : i + 200]))
        return [m.hex(":") for m in macs]

    def del_fdb(self, mac: bytes) -> None:
        body = _NDMSG.pack(nlsock.AF_BRIDGE, self.p0, 0, nlsock.NTF_MASTER, 0)
        body += nlsock.nla(nlsock.NDA_LLADDR, mac)
        self.conn.request(nlsock.RTM_DELNEIGH, body)

    def add_neigh(self, ip: str, mac: bytes) -> None:
        body = _NDMSG.pack(socket.AF_INET, self.br0, nlsock.NUD_PERMANENT, 0, 0)
        body += nlsock.nla(nlsock.NDA_DST, socket.inet_aton(ip))
        body += nlsock.nla(nlsock.NDA_LLADDR, mac)
        self.conn.request(nlsock.RTM_NEWNEIGH, body, nlsock.NLM_F_CREATE | nlsock.NLM_F_EXCL)

    def add_veth(self, name: str) -> None:
        body = _IFINFO.pack(0, 0, 0, 0, 0) + nlsock.nla(nlsock.IFLA_IFNAME, name.encode() + b"\0")
        body += nlsock.nla(nlsock.IFLA_LINKINFO, nlsock.nla(nlsock.IFLA_INFO_KIND, b"veth\0"))
        self.conn.request(nlsock.RTM_NEWLINK, body, nlsock.NLM_F_CREATE | nlsock.NLM_F_EXCL)


@pytest.fixture
def ns() -> Iterator[Ns]:
    n = Ns()
    try:
        yield n
    finally:
        n.close()


def _settle(rec: Recorder) -> None:
    """Let the watcher report what building the namespace caused (IPv6 setup, DAD...)."""
    time.sleep(0.05)
    rec.quiet(0.15)


def test_link_add_reported_within_100ms(ns: Ns) -> None:
    rec = Recorder()
    with NetlinkWatcher(ns.name, rec):
        _settle(rec)
        t0 = time.perf_counter()
        ns.add_veth("w1")
        t, _kinds = rec.wait_for("link", t0)
        assert t - t0 < 0.1


def test_fdb_add_reported_within_100ms(ns: Ns) -> None:
    rec = Recorder()
    with NetlinkWatcher(ns.name, rec):
        _settle(rec)
        t0 = time.perf_counter()
        ns.add_fdb(b"\x02\x00\x00\x00\x00\x01")
        t, kinds = rec.wait_for("fdb", t0)
        assert t - t0 < 0.1
        assert "neigh" not in kinds  # an AF_BRIDGE neighbour message is an FDB change
    assert any(f.mac == "02:00:00:00:00:01" for f in read_fdb(ns.name, "br0"))


def test_neighbour_add_reported_within_100ms(ns: Ns) -> None:
    rec = Recorder()
    with NetlinkWatcher(ns.name, rec):
        _settle(rec)
        t0 = time.perf_counter()
        ns.add_neigh("10.7.0.9", b"\x02\x00\x00\x00\x00\x09")
        t, kinds = rec.wait_for("neigh", t0)
        assert t - t0 < 0.1
        assert "fdb" not in kinds


def test_address_and_route_changes(ns: Ns) -> None:
    rec = Recorder()
    with NetlinkWatcher(ns.name, rec):
        _settle(rec)
        t0 = time.perf_counter()
        subprocess.run(["ip", "-n", ns.name, "addr", "add", "10.8.0.1/24", "dev", "br0"],
                       check=True)  # fmt: skip
        rec.wait_for("addr", t0)
        rec.wait_for("route", t0)  # the prefix route of the new address


def test_burst_is_coalesced(ns: Ns) -> None:
    rec = Recorder()
    with NetlinkWatcher(ns.name, rec) as w:
        _settle(rec)
        before = len(rec.calls)
        t0 = time.perf_counter()
        macs = ns.add_fdb_burst(1000, tag=1)
        rec.wait_for("fdb", t0)
        rec.quiet(0.3)
        burst = rec.calls[before:]
        assert 1 <= len(burst) <= 10, f"{len(burst)} callbacks for 1,000 FDB changes"
        assert all("fdb" in kinds for _t, kinds in burst)
        assert w.overruns == 0
    # the last callback came after the last change: everything is there when re-read
    have = {f.mac for f in read_fdb(ns.name, "br0")}
    assert set(macs) <= have


def test_overrun_reports_everything_and_continues(ns: Ns) -> None:
    """A tiny receive buffer and a callback that blocks: the kernel drops messages (ENOBUFS);
    the watcher says everything changed, then keeps reporting."""
    rec = Recorder(block_first_s=0.4)
    with NetlinkWatcher(ns.name, rec, rcvbuf=4096) as w:
        t0 = time.perf_counter()
        ns.add_fdb(b"\x02\x00\x00\x00\x00\x0f")  # first callback: blocks 0.4 s
        time.sleep(0.05)
        ns.add_fdb_burst(1000, tag=2)  # overruns the socket meanwhile
        time.sleep(0.4)
        rec.quiet(0.3)
        assert w.overruns >= 1
        assert any(kinds == ALL_KINDS for t, kinds in rec.calls if t >= t0)
        assert w.running
        t1 = time.perf_counter()
        ns.add_neigh("10.7.0.10", b"\x02\x00\x00\x00\x00\x10")
        t, _ = rec.wait_for("neigh", t1)
        assert t - t1 < 0.1


def test_stop_is_clean(ns: Ns) -> None:
    rec = Recorder()
    w = NetlinkWatcher(ns.name, rec)
    w.start()
    assert w.running
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 1.0
    assert not w.running
    w.stop()  # twice is fine
    names = [t.name for t in threading.enumerate()]
    assert not any(n.startswith("nlwatch-") for n in names)


def test_stop_from_the_callback(ns: Ns) -> None:
    done = threading.Event()
    w: NetlinkWatcher

    def on_change(_kinds: frozenset[str]) -> None:
        w.stop()
        done.set()

    w = NetlinkWatcher(ns.name, on_change)
    w.start()
    ns.add_fdb(b"\x02\x00\x00\x00\x00\x20")
    assert done.wait(2)
    deadline = time.monotonic() + 2
    while w.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not w.running


def test_watched_namespace_deleted(ns: Ns) -> None:
    """Deleting the namespace under a running watcher: no crash, stop still works."""
    rec = Recorder()
    w = NetlinkWatcher(ns.name, rec)
    w.start()
    subprocess.run(["ip", "netns", "del", ns.name], check=True)
    time.sleep(0.1)
    assert w.running
    w.stop()
    assert not w.running


def test_missing_namespace() -> None:
    with pytest.raises(NetnsGone, match="does not exist"):
        NetlinkWatcher(f"{PREFIX}nonexistent", lambda _k: None).start()


def _key(recs: object) -> set[tuple[str, str, str, str]]:
    return {(r.mac, r.port, r.bridge, r.kind) for r in recs}  # type: ignore[attr-defined]


def test_fdb_changes_patch_the_table(ns: Ns) -> None:
    """on_fdb hands over decoded FDB events; applied to the last dump they give what a new
    dump gives (adds, a burst, a port added meanwhile, deletions)."""
    got: list[FdbChange] = []
    rec = Recorder()
    before = read_fdb(ns.name, "br0")
    with NetlinkWatcher(ns.name, rec, on_fdb=got.extend):
        _settle(rec)
        t0 = time.perf_counter()
        ns.add_fdb(b"\x02\x00\x00\x00\x01\x01")
        rec.wait_for("fdb", t0)
        first = [c for c in got if c.record.mac == "02:00:00:00:01:01"]
        assert len(first) == 1 and not first[0].deleted
        assert (first[0].record.port, first[0].record.bridge) == ("p0", "br0")
        assert first[0].record.kind == "static"
        ns.add_fdb_burst(500, tag=3)
        # a port that did not exist when the watcher started: named from the link event
        subprocess.run(["ip", "-n", ns.name, "link", "add", "w2", "type", "veth", "peer", "name",
                        "w2p"], check=True)  # fmt: skip
        subprocess.run(["ip", "-n", ns.name, "link", "set", "w2", "master", "br0"], check=True)
        subprocess.run(["bridge", "-n", ns.name, "fdb", "add", "02:00:00:00:02:02", "dev", "w2",
                        "master", "static"], check=True)  # fmt: skip
        t1 = time.perf_counter()
        ns.del_fdb(b"\x02\x00\x00\x00\x01\x01")
        rec.wait_for("fdb", t1)
        rec.quiet(0.2)
    assert any(c.deleted and c.record.mac == "02:00:00:00:01:01" for c in got)
    w2 = [c.record for c in got if c.record.mac == "02:00:00:00:02:02"]
    assert w2 and w2[0].port == "w2"
    patched = apply_fdb_changes(before, got)
    assert _key(patched) == _key(read_fdb(ns.name, "br0"))
    assert len(patched) == len(read_fdb(ns.name, "br0"))


def test_fdb_client_contract_survives_overrun(ns: Ns) -> None:
    """A client that patches on on_fdb and re-dumps when told everything changed ends with the
    kernel's FDB even when the socket overran; the overrun batch is not handed over."""
    table = {"fdb": read_fdb(ns.name, "br0")}
    batches: list[int] = []

    def on_fdb(changes: tuple[FdbChange, ...]) -> None:
        batches.append(len(changes))
        table["fdb"] = apply_fdb_changes(table["fdb"], changes)

    rec = Recorder(block_first_s=0.4)

    def on_change(kinds: frozenset[str]) -> None:
        rec(kinds)
        if kinds == ALL_KINDS:
            table["fdb"] = read_fdb(ns.name, "br0")

    with NetlinkWatcher(ns.name, on_change, rcvbuf=4096, on_fdb=on_fdb) as w:
        ns.add_fdb(b"\x02\x00\x00\x00\x03\x01")
        t0 = time.monotonic()  # the first change handed over alone before the burst, even loaded
        while not batches and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        ns.add_fdb_burst(1000, tag=4)
        time.sleep(0.4)
        rec.quiet(0.3)
        assert w.overruns >= 1
    assert batches[0] == 1  # the change before the overrun came whole
    assert sum(batches) < 1001  # what was lost was not passed off as a complete batch
    assert _key(table["fdb"]) == _key(read_fdb(ns.name, "br0"))
