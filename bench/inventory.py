#!/usr/bin/env python3
"""Benchmark: the netlink side of the inventory on a big bridge, against iproute2.

Builds, in its own namespaces (``kvbench-br`` and ``kvbench-peer`` by default), a bridge with
1,000 veth ports (peers in the second namespace) and 50,000 static FDB entries added over
netlink in bulk. Then, several times in the same run:

- ``read_netlink()`` (links, ports, FDB, neighbours, routes, ip_forward) in this process, and the
  full snapshot too when ``kvmtui.core.snapshot`` exists;
- ``ip -j link show`` + ``bridge -j fdb show`` in the same namespace (subprocesses: the reference);

and prints the medians, their ratio (goal <= 1.5), the peak RSS growth of the reads, and the
delay from an FDB change (a static entry added over netlink) to the watcher's callback
(goal < 100 ms) and to a re-read FDB. It always removes its namespaces.

    /work/main/.venv/bin/python bench/inventory.py [--prefix kvbench-] [--ports 1000]
                                                    [--fdb 50000] [--reps 5]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kvmtui.core import nlfast, nlsock
from kvmtui.core.netlink import FdbChange, apply_fdb_changes, read_fdb, read_links, read_netlink
from kvmtui.core.nlwatch import NetlinkWatcher

NLM_F_CREATE = 0x400
NLM_F_EXCL = 0x200
BRIDGE = "br0"
TEST_URI = "test:///default"


def run(*cmd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin, text=True, capture_output=True, check=True)


def ns_names(prefix: str) -> tuple[str, str]:
    return f"{prefix}br", f"{prefix}peer"


def cleanup(prefix: str) -> None:
    for ns in ns_names(prefix):
        if os.path.exists(f"/run/netns/{ns}"):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def build(prefix: str, ports: int) -> None:
    ns, peer = ns_names(prefix)
    for name in (ns, peer):
        run("ip", "netns", "add", name)
        # no IPv6 chatter from 2,000 interfaces (it would add learned entries and noise)
        for key in ("all", "default"):
            run("ip", "netns", "exec", name, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")
    lines = ["link set lo up", f"link add {BRIDGE} type bridge", f"link set {BRIDGE} up"]
    lines += [f"link add p{i} type veth peer name q{i} netns {peer}" for i in range(ports)]
    lines += [f"link set p{i} master {BRIDGE} up" for i in range(ports)]
    run("ip", "-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")
    run("ip", "-n", peer, "-batch", "-", stdin="".join(f"link set q{i} up\n" for i in range(ports)))


def add_fdb_bulk(prefix: str, count: int) -> None:
    """``count`` static entries spread over the ports, many requests per datagram."""
    ns, _peer = ns_names(prefix)
    with nlsock.NsHandle(ns) as h, nlsock.NlConn.open(h) as conn:
        ports = [rl.index for rl in nlfast.dump_links(conn, kind="veth")]
        hdr = struct.Struct("=IHHII")
        body = struct.Struct("=BxxxiHBB")
        flags = nlsock.NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL
        sock = conn.sock
        chunk: list[bytes] = []
        for i in range(count):
            mac = bytes((0x02, 0xBE, (i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255))
            payload = body.pack(
                nlsock.AF_BRIDGE, ports[i % len(ports)], nlsock.NUD_NOARP, nlsock.NTF_MASTER, 0
            ) + nlsock.nla(nlsock.NDA_LLADDR, mac)
            chunk.append(
                hdr.pack(16 + len(payload), nlsock.RTM_NEWNEIGH, flags, i + 1, 0) + payload
            )
            if len(chunk) == 256 or i == count - 1:
                sock.send(b"".join(chunk))
                chunk.clear()
        # errors of the unacknowledged requests arrive before the reply to this one
        sock.setblocking(False)
        errors = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                data = sock.recv(1 << 16)
                for mtype, _fl, _seq, pos, end in nlsock.walk(data):
                    if mtype == nlsock.NLMSG_ERROR and end >= pos + 20:
                        errors += struct.unpack_from("=i", data, pos + 16)[0] != 0
        if errors:
            raise RuntimeError(f"{errors} FDB additions failed")


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def find_snapshot(ns: str) -> tuple[str, Callable[[], Any]] | None:
    """The full snapshot function of kvmtui.core.snapshot, if that module exists yet. libvirt
    is its test driver (no daemon): the netlink side is what is measured here."""
    try:
        mod = importlib.import_module("kvmtui.core.snapshot")
    except ImportError:
        return None
    for name in ("read_host", "build_snapshot", "take_snapshot", "read_snapshot"):
        fn = getattr(mod, name, None)
        if not callable(fn):
            continue
        params = inspect.signature(fn).parameters
        if "netns" not in params:
            continue
        kwargs: dict[str, Any] = {"netns": ns}
        if "uri" in params:
            kwargs["uri"] = TEST_URI
        return f"snapshot.{name}", lambda fn=fn, kw=kwargs: fn(**kw)
    return None


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fdb_add_msg(port: int, mac: bytes) -> bytes:
    body = struct.pack("=BxxxiHBB", nlsock.AF_BRIDGE, port, nlsock.NUD_NOARP, nlsock.NTF_MASTER, 0)
    body += nlsock.nla(nlsock.NDA_LLADDR, mac)
    flags = nlsock.NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL
    return struct.pack("=IHHII", 16 + len(body), nlsock.RTM_NEWNEIGH, flags, 1, 0) + body


def watcher_delays(prefix: str, n: int) -> dict[str, list[float]]:
    """Delays from an FDB add (over netlink, in this process) to: the watcher's first callback
    (on_fdb, with the decoded change); the whole FDB table patched with it
    (apply_fdb_changes); on_change plus a kernel-filtered re-read of that port's FDB."""
    ns, _ = ns_names(prefix)
    got = threading.Event()
    stamp: list[float] = [0.0]
    table = {"fdb": read_fdb(ns, BRIDGE)}
    patched_at: list[float] = [0.0]

    def on_fdb(changes: tuple[FdbChange, ...]) -> None:
        stamp[0] = time.perf_counter()  # the first thing the client hears of the change
        table["fdb"] = apply_fdb_changes(table["fdb"], changes)
        patched_at[0] = time.perf_counter()

    def on_change(kinds: frozenset[str]) -> None:
        if "fdb" in kinds:
            got.set()

    out: dict[str, list[float]] = {"callback": [], "port re-read": [], "table patched": []}
    with (
        NetlinkWatcher(ns, on_change, on_fdb=on_fdb),
        nlsock.NsHandle(ns) as h,
        nlsock.NlConn.open(h) as conn,
    ):
        port = nlfast.dump_links(conn, kind="veth")[0].index
        for i in range(n):
            time.sleep(0.1)
            got.clear()
            mac = bytes((0x02, 0xCC, 0, 0, 0, i))
            t0 = time.perf_counter()
            conn.sock.send(_fdb_add_msg(port, mac))
            if not got.wait(2.0):
                out["callback"].append(float("inf"))
                continue
            out["callback"].append(stamp[0] - t0)
            out["table patched"].append(patched_at[0] - t0)
            entries = nlfast.dump_fdb(conn, port=port)
            out["port re-read"].append(time.perf_counter() - t0)  # after on_change
            assert any(e.mac == mac.hex(":") for e in entries)
            assert any(e.mac == mac.hex(":") for e in table["fdb"])
    return out


def live_snapshot_delay(prefix: str, n: int) -> list[float] | None:
    """FDB add -> a new HostSnapshot from kvmtui.core.live.LiveHost.watch showing it, if that
    module exists (the snapshot helper's code path, measured end to end)."""
    try:
        from kvmtui.core.live import LiveHost
    except ImportError:
        return None
    ns, _ = ns_names(prefix)
    host = LiveHost(uri=TEST_URI, netns=ns)
    stop = threading.Event()
    snaps: list[tuple[float, Any]] = []
    cond = threading.Condition()

    def on_snapshot(snap: Any) -> None:
        with cond:
            snaps.append((time.perf_counter(), snap))
            cond.notify_all()

    th = threading.Thread(target=host.watch, args=(on_snapshot, stop), daemon=True)
    th.start()
    delays: list[float] = []
    try:
        with cond:
            cond.wait_for(lambda: bool(snaps), timeout=60)
        with nlsock.NsHandle(ns) as h, nlsock.NlConn.open(h) as conn:
            port = nlfast.dump_links(conn, kind="veth")[1].index
            for i in range(n):
                time.sleep(0.3)
                mac = bytes((0x02, 0xDD, 0, 0, 0, i))
                want = mac.hex(":")
                t0 = time.perf_counter()
                conn.sock.send(_fdb_add_msg(port, mac))

                def first_hit(want: str = want, t0: float = t0) -> float | None:
                    for t, snap in snaps:
                        br = snap.bridge(BRIDGE) if t >= t0 else None
                        if br is not None and any(e.mac == want for e in br.fdb):
                            return t
                    return None

                with cond:
                    cond.wait_for(lambda: first_hit() is not None, timeout=10)
                    hit = first_hit()
                delays.append(hit - t0 if hit is not None else float("inf"))
    finally:
        stop.set()
        th.join(10)
        with contextlib.suppress(Exception):
            host.close()
    return delays


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


@contextlib.contextmanager
def namespaces(prefix: str) -> Iterator[None]:
    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, on_signal)
    cleanup(prefix)
    try:
        yield
    finally:
        t0 = time.perf_counter()
        cleanup(prefix)
        print(f"cleanup: namespaces removed in {time.perf_counter() - t0:.1f} s")
        signal.signal(signal.SIGTERM, old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefix", default="kvbench-")
    ap.add_argument("--ports", type=int, default=1000)
    ap.add_argument("--fdb", type=int, default=50000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/inventory.py: run as root (it builds network namespaces)", file=sys.stderr)
        return 1
    print(f"python: {sys.executable} {sys.version.split()[0]} ({sys.implementation.name})")
    ns, _ = ns_names(args.prefix)
    with namespaces(args.prefix):
        t0 = time.perf_counter()
        build(args.prefix, args.ports)
        t1 = time.perf_counter()
        add_fdb_bulk(args.prefix, args.fdb)
        t2 = time.perf_counter()
        print(
            f"built {ns}: {BRIDGE} with {args.ports} veth ports in {t1 - t0:.1f} s, "
            f"{args.fdb} static FDB entries in {t2 - t1:.1f} s"
        )
        snap = find_snapshot(ns)
        rss0 = maxrss_mb()
        state = read_netlink(ns)  # warm-up, and a sanity check of what it read
        rss1 = maxrss_mb()
        ours_fdb = sum(1 for f in state.fdb if f.kind == "static")
        ports = sum(1 for _p, _i in state.bridge_ports)
        print(f"read_netlink saw {len(state.links)} links, {ports} ports, {len(state.fdb)} FDB")
        if ours_fdb < args.fdb or ports != args.ports:
            print(f"ERROR: expected {args.ports} ports and {args.fdb} static entries")
            return 1
        ref_fdb = run("bridge", "-n", ns, "-j", "fdb", "show").stdout.count('"static"')
        if ref_fdb != ours_fdb:
            print(f"ERROR: bridge fdb show lists {ref_fdb} static entries, read_netlink {ours_fdb}")
            return 1

        rows: dict[str, list[float]] = {
            "ip -j link": [],
            "bridge -j fdb show": [],
            "iproute2 total": [],
            "read_netlink": [],
            "read_links": [],
            f"read_fdb({BRIDGE})": [],
        }
        if snap is not None:
            rows[snap[0]] = []
        for _ in range(args.reps):
            a = timed(lambda: run("ip", "-n", ns, "-j", "link", "show"))
            b = timed(lambda: run("bridge", "-n", ns, "-j", "fdb", "show"))
            rows["ip -j link"].append(a)
            rows["bridge -j fdb show"].append(b)
            rows["iproute2 total"].append(a + b)
            rows["read_netlink"].append(timed(lambda: read_netlink(ns)))
            rows["read_links"].append(timed(lambda: read_links(ns)))
            rows[f"read_fdb({BRIDGE})"].append(timed(lambda: read_fdb(ns, BRIDGE)))
            if snap is not None:
                rows[snap[0]].append(timed(snap[1]))
        rss2 = maxrss_mb()
        print(f"\nmedians over {args.reps} runs (min-max):")
        for name, vals in rows.items():
            print(
                f"  {name:<28} {ms(statistics.median(vals)):>10}  ({ms(min(vals))}-{ms(max(vals))})"
            )
        ref = statistics.median(rows["iproute2 total"])
        ratio = statistics.median(rows["read_netlink"]) / ref
        print(
            f"\nratio read_netlink / (ip -j link + bridge -j fdb show): {ratio:.2f} (goal <= 1.5)"
        )
        if snap is not None:
            sratio = statistics.median(rows[snap[0]]) / ref
            print(f"ratio {snap[0]} / iproute2: {sratio:.2f} (goal <= 1.5)")
        else:
            print("full snapshot: kvmtui.core.snapshot not available yet (netlink part only)")
        print(
            f"peak RSS growth: first read_netlink +{rss1 - rss0:.1f} MB, "
            f"after all runs +{rss2 - rss0:.1f} MB (peak {rss2:.0f} MB)"
        )
        delays = watcher_delays(args.prefix, 10)
        labels = {
            "callback": "FDB change -> watcher callback",
            "table patched": f"FDB change -> whole {len(state.fdb)}-entry table patched (on_fdb)",
            "port re-read": "FDB change -> callback + that port's FDB re-dumped",
        }
        for key, label in labels.items():
            vals = delays[key]
            print(f"{label}: median {ms(statistics.median(vals))}, max {ms(max(vals))}")
        print("  (goal < 100 ms)")
        live = live_snapshot_delay(args.prefix, 3)
        if live is None:
            print("FDB change -> new snapshot: kvmtui.core.live not available yet")
        else:
            print(
                f"FDB change -> new HostSnapshot from LiveHost.watch: median "
                f"{ms(statistics.median(live))}, max {ms(max(live))} (goal < 100 ms)"
            )
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
