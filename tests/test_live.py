"""LiveHost: a new snapshot within 100 ms of a change, from netlink multicast (in a namespace we
own) and from libvirt lifecycle events (libvirt's test driver, whose default connection is
shared inside one process, so a read-write connection here changes what LiveHost watches)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kvmtui.core.live import LiveHost
from kvmtui.core.model import HostSnapshot
from kvmtui.core.netns import in_netns
from kvmtui.lab.handle import LabHandle

LIMIT_S = 0.100
NO_DAEMON = "qemu:///system?socket=/nonexistent/kvC/libvirt-sock"


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"kvC-live{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


class Watch:
    """Runs LiveHost.watch in a thread and records (monotonic time, snapshot)."""

    def __init__(self, host: LiveHost) -> None:
        self.host = host
        self.snaps: list[tuple[float, HostSnapshot]] = []
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=host.watch, args=(self._on, self.stop), daemon=True)

    def _on(self, s: HostSnapshot) -> None:
        with self.cond:
            self.snaps.append((time.monotonic(), s))
            self.cond.notify_all()

    def __enter__(self) -> Watch:
        self.thread.start()
        self.wait(lambda s: True, since=0.0, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive(), "watch() did not return after stop"
        self.host.close()

    def wait(
        self, pred: Callable[[HostSnapshot], bool], since: float, timeout: float = 2.0
    ) -> tuple[float, HostSnapshot]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, s in self.snaps:
                    if t >= since and pred(s):
                        return t, s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no matching snapshot in time")
                self.cond.wait(left)


def test_link_and_fdb_changes_within_100ms(ns: str) -> None:
    from pyroute2 import IPRoute

    with in_netns(ns):
        ipr = IPRoute()
    try:
        with Watch(LiveHost(uri=NO_DAEMON, netns=ns)) as w:
            first = w.snaps[0][1]
            assert first.link("kvcv0") is None
            # libvirtd unreachable: the snapshot says so, netlink still works
            assert any(p.source == "libvirt" for p in first.problems)

            t0 = time.monotonic()
            ipr.link("add", ifname="kvcv0", kind="veth", peer="kvcv1")
            t, s = w.wait(lambda s: s.link("kvcv0") is not None, since=t0)
            assert t - t0 < LIMIT_S, f"link add took {(t - t0) * 1000:.0f} ms"
            assert s.link("kvcv0").kind == "veth"  # type: ignore[union-attr]

            ipr.link("add", ifname="kvcbr", kind="bridge")
            br = ipr.link_lookup(ifname="kvcbr")[0]
            ipr.link("set", ifname="kvcv0", master=br)
            ipr.link("set", ifname="kvcbr", state="up")
            w.wait(lambda s: any(p.name == "kvcv0" for b in s.bridges for p in b.ports), since=t0)

            mac = "02:00:00:c0:ff:ee"
            port = ipr.link_lookup(ifname="kvcv0")[0]
            t0 = time.monotonic()
            # bridge fdb add MAC dev kvcv0 master static: NTF_MASTER, NUD_NOARP
            ipr.fdb("add", ifindex=port, lladdr=mac, flags=0x04, state=0x40)
            t, s = w.wait(lambda s: any(f.mac == mac for b in s.bridges for f in b.fdb), since=t0)
            assert t - t0 < LIMIT_S, f"FDB add took {(t - t0) * 1000:.0f} ms"
            entry = next(f for f in s.bridge("kvcbr").fdb if f.mac == mac)  # type: ignore[union-attr]
            assert entry.port == "kvcv0" and entry.kind == "static"

            t0 = time.monotonic()  # an FDB-only change: patched from the event, no re-dump
            ipr.fdb("del", ifindex=port, lladdr=mac, flags=0x04)
            t, s = w.wait(
                lambda s: not any(f.mac == mac for b in s.bridges for f in b.fdb), since=t0
            )
            assert t - t0 < LIMIT_S, f"FDB del took {(t - t0) * 1000:.0f} ms"
            assert s.link("kvcv0") is not None
            ipr.fdb("add", ifindex=port, lladdr=mac, flags=0x04, state=0x40)
            w.wait(lambda s: any(f.mac == mac for b in s.bridges for f in b.fdb), since=t0)

            t0 = time.monotonic()
            ipr.link("del", ifname="kvcv0")
            t, s = w.wait(lambda s: s.link("kvcv0") is None, since=t0)
            assert t - t0 < LIMIT_S
            assert not any(f.mac == mac for b in s.bridges for f in b.fdb)

            counters = w.host.counters()
            assert "kvcbr" in counters and "lo" in counters
    finally:
        ipr.close()


def test_libvirt_lifecycle_event_within_100ms(ns: str) -> None:
    import libvirt

    uri = "test:///default"
    with Watch(LiveHost(uri=uri, netns=ns)) as w:
        first = w.snaps[0][1]
        assert first.problems == () and first.vm("test") is not None
        assert first.vm("test").state == "running"  # type: ignore[union-attr]
        rw = libvirt.open(uri)  # the same in-process test-driver instance
        try:
            dom = rw.lookupByName("test")
            t0 = time.monotonic()
            dom.suspend()
            t, _ = w.wait(lambda s: s.vm("test").state == "paused", since=t0)  # type: ignore[union-attr]
            assert t - t0 < LIMIT_S, f"domain event took {(t - t0) * 1000:.0f} ms"
            t0 = time.monotonic()
            dom.resume()
            t, _ = w.wait(lambda s: s.vm("test").state == "running", since=t0)  # type: ignore[union-attr]
            assert t - t0 < LIMIT_S
            net = rw.networkLookupByName("default")
            t0 = time.monotonic()
            net.destroy()
            t, _ = w.wait(lambda s: not s.network("default").active, since=t0)  # type: ignore[union-attr]
            assert t - t0 < LIMIT_S, f"network event took {(t - t0) * 1000:.0f} ms"
            net.create()
            w.wait(lambda s: s.network("default").active, since=t0)  # type: ignore[union-attr]
        finally:
            rw.close()


def test_neighbour_change_keeps_the_fdb(ns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A neighbour change re-reads netlink without the FDB (on a big host that dump is a
    second of kernel time); the FDB stays whole, and an FDB change arriving in the same batch
    is still applied from its event."""
    import kvmtui.core.netlink as netlink

    reads: list[bool] = []
    real = netlink.read_netlink

    def spy(netns: str | None = None, *, fdb: bool = True) -> object:
        reads.append(fdb)
        return real(netns, fdb=fdb)

    monkeypatch.setattr(netlink, "read_netlink", spy)
    dumps: list[str | None] = []
    real_fdb = netlink.read_fdb

    def fdb_spy(netns: str | None = None, bridge: str | None = None) -> object:
        dumps.append(netns)
        return real_fdb(netns, bridge)

    monkeypatch.setattr(netlink, "read_fdb", fdb_spy)

    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", ns, *args], check=True)

    ip("link", "add", "kvcbr", "type", "bridge")
    ip("link", "add", "kvcv0", "type", "veth", "peer", "name", "kvcv1")
    ip("link", "set", "kvcv0", "master", "kvcbr", "up")
    ip("link", "set", "kvcbr", "up")
    old, new = "02:00:00:c0:ff:01", "02:00:00:c0:ff:02"
    ip(
        "neigh",
        "add",
        "10.9.0.2",
        "lladdr",
        "02:00:00:aa:00:02",
        "dev",
        "kvcbr",
        "nud",
        "permanent",
    )
    subprocess.run(["bridge", "-n", ns, "fdb", "add", old, "dev", "kvcv0", "master", "static"],
                   check=True)  # fmt: skip
    time.sleep(0.3)  # the up events of the links have passed before the watch starts

    def macs(s: HostSnapshot) -> set[str]:
        b = s.bridge("kvcbr")
        return {f.mac for f in b.fdb} if b is not None else set()

    with Watch(LiveHost(uri=NO_DAEMON, netns=ns)) as w:
        assert old in macs(w.snaps[0][1])
        time.sleep(0.2)
        reads.clear()
        t0 = time.monotonic()
        ip("neigh", "replace", "10.9.0.2", "lladdr", "02:00:00:aa:00:03", "dev", "kvcbr",
           "nud", "permanent")  # fmt: skip
        subprocess.run(["bridge", "-n", ns, "fdb", "add", new, "dev", "kvcv0", "master",
                        "static"], check=True)  # fmt: skip
        _t, s = w.wait(
            lambda s: any(n.mac == "02:00:00:aa:00:03" for n in s.neighbours) and new in macs(s),
            since=t0,
        )
        assert old in macs(s)  # the FDB read before the change is kept
        assert reads and not any(reads), f"the FDB was dumped again: {reads}"
        (entry,) = [f for f in s.bridge("kvcbr").fdb if f.mac == new]  # type: ignore[union-attr]
        assert entry.port == "kvcv0" and entry.kind == "static"

        # a link change that leaves the ports as they were (an MTU): no FDB dump either
        reads.clear()
        t0 = time.monotonic()
        ip("link", "set", "kvcv0", "mtu", "1400")
        _t, s = w.wait(lambda s: s.link("kvcv0").mtu == 1400, since=t0)  # type: ignore[union-attr]
        assert {old, new} <= macs(s)
        assert reads and not any(reads) and not dumps, (reads, dumps)
        # a new port: the FDB is dumped again (its entries are named by the ports)
        t0 = time.monotonic()
        ip("link", "add", "kvcv2", "type", "veth", "peer", "name", "kvcv3")
        ip("link", "set", "kvcv2", "master", "kvcbr")
        _t, s = w.wait(
            lambda s: any(p.name == "kvcv2" for p in s.bridge("kvcbr").ports),  # type: ignore[union-attr]
            since=t0,
        )
        assert dumps or any(reads)
        assert {old, new} <= macs(s)


def test_snapshot_without_watch(ns: str) -> None:
    host = LiveHost(uri=NO_DAEMON, netns=ns)
    s = host.snapshot()
    assert s.link("lo") is not None and s.vms == ()
    (p,) = [p for p in s.problems if p.source == "libvirt"]
    assert "is libvirtd running? Try -c URI" in p.message
    host.close()


class SocketProxy:
    """A Unix-socket relay in front of the lab's libvirtd: stopping it looks, to a client,
    exactly like libvirtd going away (connections closed, socket refused); starting it again
    looks like libvirtd coming back. The lab's daemon itself is never touched."""

    def __init__(self, path: str, target: str) -> None:
        self.path, self.target = path, target
        self.srv: socket.socket | None = None
        self.conns: list[socket.socket] = []

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.path)
        srv.listen(8)
        self.srv = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.connect(self.target)
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self.srv is not None:
            self.srv.close()
            self.srv = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        for s in self.conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.conns = []


@pytest.mark.lab
def test_reconnects_when_libvirtd_comes_back(lab: LabHandle, tmp_path: Path) -> None:
    from kvmtui.lab import spec

    target = f"{spec.state_dir(lab.prefix)}/run/libvirt/libvirt-sock"
    proxy = SocketProxy(str(tmp_path / "sock"), target)
    proxy.start()
    uri = f"qemu:///system?socket={proxy.path}"

    def libvirt_ok(s: HostSnapshot) -> bool:
        return not any(p.source == "libvirt" for p in s.problems) and bool(s.networks)

    try:
        with Watch(LiveHost(uri=uri, netns=lab.host_ns)) as w:
            assert libvirt_ok(w.snaps[0][1])
            t0 = time.monotonic()
            proxy.stop()
            _, s = w.wait(lambda s: not libvirt_ok(s), since=t0, timeout=15)
            (p,) = [p for p in s.problems if p.source == "libvirt"]
            assert p.message.startswith(f"libvirt: cannot connect to {uri}")
            assert s.bridges, "netlink parts are still read while libvirt is away"
            t0 = time.monotonic()
            proxy.start()
            t, s = w.wait(libvirt_ok, since=t0, timeout=15)
            assert t - t0 < 5.0, f"reconnect took {t - t0:.1f} s"
            assert s.network(spec.NAT_NET) is not None
    finally:
        proxy.stop()
