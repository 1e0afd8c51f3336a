"""Capture benchmark: kvmtui's engine and ``tcpdump -w /dev/null`` on the same bridge, same flood.

    python bench/capture.py [--packets N] [--seconds S] [--rows N] [--pcap]

Builds three namespaces of its own (prefix ``kvE-b``): a sender, a bridge namespace (bridge
``br`` with ports ``p0`` and ``p1``, promiscuous) and a sink. A small C generator (compiled
with gcc at bench time) floods 64-byte UDP frames with ``sendmmsg`` on an AF_PACKET socket from
the sender through the bridge, bounded by a packet count and a time limit. During the flood:

- kvmtui's ``CaptureSession`` (in a child process, so its CPU and memory are its own) captures
  the "VM" (the sender's MAC) on the bridge hop, BPF ``ether host MAC``;
- ``tcpdump -w /dev/null`` captures on the same bridge with the same filter.

Printed: packets sent, captured and dropped by each, CPU per packet (user+sys of each process
over the packets it captured), the ratio engine/tcpdump captured (goal >= 0.95), the engine's
decoded/skipped split, its peak RSS; and which Python ran it. ``--pcap`` runs the flood a
second time with the engine streaming every frame to a pcapng file as ``trace --pcap`` does
(the engine's ``sink``), and prints its CPU beside the figure without export (goal: <= 10 % more).
Everything is removed at the end, the flood always stops (count and time bound, and a kill at
the end).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

P = "kvE-b"
NS_SRC, NS_BR, NS_DST = P + "src", P + "br", P + "dst"
SRC_MAC = "52:54:00:be:00:01"
DST_MAC = "52:54:00:be:00:02"

GEN_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* gen IFACE COUNT SECONDS: send COUNT 64-byte UDP frames (52:54:00:be:00:01 ->
   52:54:00:be:00:02, 10.99.0.1 -> 10.99.0.2:9) as fast as possible, stop after SECONDS. */
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    long count = atol(argv[2]);
    double limit = atof(argv[3]);
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0) { perror("socket"); return 1; }
    struct sockaddr_ll sll = {0};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = if_nametoindex(argv[1]);
    sll.sll_halen = 6;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); return 1; }
    enum { B = 256 };
    static unsigned char frames[B][64];
    static struct iovec iov[B];
    static struct mmsghdr msgs[B];
    unsigned char tmpl[64] = {
        0x52,0x54,0x00,0xbe,0x00,0x02, 0x52,0x54,0x00,0xbe,0x00,0x01, 0x08,0x00,
        0x45,0x00,0x00,50, 0,0, 0,0, 64,17, 0,0, 10,99,0,1, 10,99,0,2,
        0x30,0x39, 0x00,0x09, 0x00,30, 0,0 };
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long sent = 0;
    unsigned int seq = 0;
    while (sent < count) {
        int n = count - sent < B ? (int)(count - sent) : B;
        for (int i = 0; i < n; i++) {
            memcpy(frames[i], tmpl, 64);
            seq++;
            frames[i][18] = seq >> 8; frames[i][19] = seq;          /* IP ID */
            unsigned int sum = 0;                 /* IP header checksum (br_netfilter checks it) */
            for (int k = 14; k < 34; k += 2) sum += (frames[i][k] << 8) | frames[i][k + 1];
            while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
            sum = ~sum & 0xffff;
            frames[i][24] = sum >> 8; frames[i][25] = sum;
            memcpy(frames[i] + 42, &seq, 4);                         /* payload */
            iov[i].iov_base = frames[i]; iov[i].iov_len = 64;
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(fd, msgs, n, 0);
        if (r > 0) sent += r;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > limit) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t);
    double el = (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"sent\": %ld, \"seconds\": %.3f}\n", sent, el);
    return 0;
}
"""

# the engine, in its own process: prints one JSON line when told to stop (SIGTERM)
ENGINE = textwrap.dedent(
    """
    import json, resource, signal, sys, threading, time
    from kvmtui.capture.engine import CaptureSession
    from kvmtui.capture.pcapstream import PcapngStream
    from kvmtui.core.model import Hop, NicPath
    path = NicPath("bench", sys.argv[1], "bridge", (Hop("bbr0", "bridge"),), False, "bench")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    pcap = sys.argv[4] if len(sys.argv) > 4 else ""
    stream = PcapngStream(pcap, overwrite=True) if pcap else None
    s = CaptureSession(path, netns=sys.argv[2], conntrack=False, max_rows=int(sys.argv[3]),
                       block_size=1 << 22, block_nr=8, sink=stream)
    s.start()
    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    rss_start = rss_mb()
    print("ready", flush=True)
    rows = 0
    while not stop.is_set():
        time.sleep(0.1)
        b = s.poll()          # as the UI does, every 100 ms
        rows += len(b.rows)
    time.sleep(0.3)
    s.stop()
    b = s.poll()
    rows += len(b.rows)
    written = 0
    if stream is not None:
        stream.close()
        written = stream.frames
    h = b.hops[0]
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"received": h.received, "dropped": h.dropped, "read": b.packets,
                      "skipped": b.skipped, "rows": rows, "written": written,
                      "pcap_error": stream.error if stream is not None else None,
                      "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024,
                      "rss_start_mb": rss_start, "rss_end_mb": rss_mb()}))
    """
)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def nsx(ns: str, *cmd: str) -> None:
    sh("ip", "netns", "exec", ns, *cmd)


def down(prefix: str = P) -> None:
    for ns in (prefix + "src", prefix + "br", prefix + "dst"):
        sh("ip", "netns", "del", ns, check=False)


def up(prefix: str = P, src_mac: str = SRC_MAC, dst_mac: str = DST_MAC) -> None:
    """Sender ``{prefix}src`` -> bridge ``bbr0`` (ports p0, p1) in ``{prefix}br`` -> sink
    ``{prefix}dst``. bench/ui_capture.py builds the same with its own prefix and MACs."""
    ns_src, ns_br, ns_dst = prefix + "src", prefix + "br", prefix + "dst"
    down(prefix)
    for ns in (ns_src, ns_br, ns_dst):
        sh("ip", "netns", "add", ns)
    nsx(
        ns_br, "ip", "link", "add", "bbr0", "type", "bridge", "stp_state", "0", "forward_delay", "0"
    )
    nsx(ns_br, "ip", "link", "set", "bbr0", "up")
    for port, ns, mac in (("p0", ns_src, src_mac), ("p1", ns_dst, dst_mac)):
        nsx(ns_br, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        nsx(ns_br, "ip", "link", "set", port, "master", "bbr0", "up")
        nsx(ns, "ip", "link", "set", "eth0", "address", mac)
        nsx(ns, "ip", "link", "set", "eth0", "up")
    # the sink drops what it receives as early as possible
    nsx(ns_dst, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
    # let the bridge learn the sink's MAC, so the flood is forwarded, not flooded
    nsx(ns_br, "bridge", "fdb", "replace", dst_mac, "dev", "p1", "master", "static")


def wait4(p: subprocess.Popen[str], timeout: float) -> tuple[float, int]:
    """Wait for a child; return (its CPU seconds, exit status)."""
    end = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return ru.ru_utime + ru.ru_stime, p.returncode
        if time.monotonic() > end:
            p.kill()
        time.sleep(0.05)


def run(packets: int, seconds: float, rows: int, pcap: str = "") -> dict[str, object]:
    tmp = tempfile.mkdtemp(prefix="kvE-bench-")
    procs: list[subprocess.Popen[str]] = []
    try:
        gen = os.path.join(tmp, "gen")
        with open(gen + ".c", "w") as f:
            f.write(GEN_C)
        sh("gcc", "-O2", "-o", gen, gen + ".c")
        up()
        flt = f"ether host {SRC_MAC}"
        tcpdump = subprocess.Popen(
            ["ip", "netns", "exec", NS_BR, "tcpdump", "-i", "bbr0", "-w", "/dev/null",
             "-s", "262144", "-B", "32768", flt],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(tcpdump)
        engine = subprocess.Popen(
            [sys.executable, "-c", ENGINE, SRC_MAC, NS_BR, str(rows), pcap],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=str(Path(__file__).resolve().parents[1]),
        )  # fmt: skip
        procs.append(engine)
        assert engine.stdout is not None
        if engine.stdout.readline().strip() != "ready":
            raise SystemExit(
                f"engine did not start: {engine.stderr.read() if engine.stderr else ''}"
            )
        time.sleep(1.0)  # tcpdump is up too
        g = subprocess.run(
            ["ip", "netns", "exec", NS_SRC, gen, "eth0", str(packets), str(seconds)],
            capture_output=True, text=True, timeout=seconds + 30,
        )  # fmt: skip
        sent = json.loads(g.stdout)
        time.sleep(1.0)
        engine.send_signal(signal.SIGTERM)
        out, _err = engine.communicate(timeout=60)
        eng = json.loads(out.strip().splitlines()[-1])
        tcpdump.send_signal(signal.SIGINT)
        td_cpu, _ = wait4(tcpdump, 10)
        td_err = tcpdump.stderr.read() if tcpdump.stderr else ""
        cap = re.search(r"(\d+) packets captured", td_err)
        rec = re.search(r"(\d+) packets received by filter", td_err)
        drp = re.search(r"(\d+) packets dropped by kernel", td_err)
        td = {
            "captured": int(cap.group(1)) if cap else -1,
            "received_by_filter": int(rec.group(1)) if rec else -1,
            "dropped": int(drp.group(1)) if drp else -1,
            "cpu_s": td_cpu,
        }
        return {"sent": sent, "engine": eng, "tcpdump": td}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        down()
        shutil.rmtree(tmp, ignore_errors=True)


def correlation_cost(n: int = 50_000) -> tuple[float, float]:
    """Microseconds per frame for decode alone, and for decode + correlation (one hop), on
    64-byte UDP frames like the flood's."""
    from kvmtui.capture.correlate import Correlator, HopSpec
    from kvmtui.capture.decode import decode

    base = bytearray(64)
    base[0:14] = bytes.fromhex("525400be0002525400be00010800")
    base[14:34] = bytes.fromhex("450000320000000040110000" + "0a630001" + "0a630002")
    base[34:42] = bytes.fromhex("30390009001e0000")
    frames = []
    for i in range(n):
        f = bytearray(base)
        f[18:20] = (i & 0xFFFF).to_bytes(2, "big")
        f[42:46] = i.to_bytes(4, "little")
        frames.append(bytes(f))
    t = time.perf_counter()
    for f in frames:
        decode(f)
    dec = (time.perf_counter() - t) / n * 1e6
    c = Correlator([HopSpec(0, "bbr0", "bridge", True)], SRC_MAC, "bridge")
    t = time.perf_counter()
    for i, f in enumerate(frames):
        c.add((i * 1000, 0, 0, 64, f))
    c.flush(n * 1000 + 10**9)
    cor = (time.perf_counter() - t) / n * 1e6
    return dec, cor


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rows", type=int, default=10_000, help="the engine's row buffer")
    ap.add_argument("--pcap", action="store_true", help="also measure streaming to pcapng")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/capture.py: run as root (namespaces, AF_PACKET)", file=sys.stderr)
        return 1
    r = run(a.packets, a.seconds, a.rows)
    sent, eng, td = r["sent"], r["engine"], r["tcpdump"]
    assert isinstance(sent, dict) and isinstance(eng, dict) and isinstance(td, dict)
    n, secs = sent["sent"], sent["seconds"]
    print(
        f"python: {sys.executable} {platform.python_version()} ({platform.python_implementation()})"
    )
    print(f"flood: {n} frames of 64 bytes in {secs:.2f} s = {n / secs / 1000:.0f}k packets/s "
          "(C sendmmsg, AF_PACKET, through a Linux bridge)")  # fmt: skip
    e_cap = eng["received"]
    print(
        f"kvmtui engine : captured {e_cap} dropped {eng['dropped']} (kernel), "
        f"cpu {eng['cpu_s']:.2f} s = {eng['cpu_s'] / max(e_cap, 1) * 1e6:.2f} us/packet; "
        f"correlated {eng['read'] - eng['skipped']}, skipped {eng['skipped']} (backlog), "
        f"rows {eng['rows']} (buffer {a.rows}); RSS at start {eng['rss_start_mb']:.0f} MB"
        f" (the 32 MB ring is mapped, not yet touched), peak {eng['maxrss_mb']:.0f} MB, "
        f"at the end {eng['rss_end_mb']:.0f} MB"
    )
    t_cap = td["captured"]
    print(
        f"tcpdump       : captured {t_cap} dropped {td['dropped']} (kernel), cpu {td['cpu_s']:.2f}"
        f" s = {td['cpu_s'] / max(t_cap, 1) * 1e6:.2f} us/packet"
    )
    ratio = e_cap / t_cap if t_cap > 0 else float("nan")
    print(f"ratio captured engine/tcpdump: {ratio:.3f} (goal >= 0.95): "
          f"{'OK' if ratio >= 0.95 else 'BELOW GOAL'}")  # fmt: skip
    dec, cor = correlation_cost()
    print(f"offline: decode {dec:.2f} us/frame, decode + correlate {cor:.2f} us/frame "
          f"(so about {1e6 / cor / 1000:.0f}k frames/s correlated per core; above that the "
          "engine still drains the kernel ring and counts the rest as skipped)")  # fmt: skip
    if a.pcap:
        tmp = tempfile.mkdtemp(prefix="kvE-bench-pcap-")
        try:
            rp = run(a.packets, a.seconds, a.rows, pcap=os.path.join(tmp, "flood.pcapng"))
            size = os.path.getsize(os.path.join(tmp, "flood.pcapng"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        ep = rp["engine"]
        assert isinstance(ep, dict)
        us = eng["cpu_s"] / max(e_cap, 1) * 1e6
        us_p = ep["cpu_s"] / max(ep["received"], 1) * 1e6
        print(
            f"with --pcap   : captured {ep['received']} dropped {ep['dropped']}, wrote "
            f"{ep['written']} frames ({size / 1e6:.0f} MB), cpu "
            f"{ep['cpu_s']:.2f} s = {us_p:.2f} us/packet against {us:.2f} without: "
            f"{us_p / us:.2f}x (goal <= 1.10), peak RSS {ep['maxrss_mb']:.0f} MB"
        )
        r["engine_pcap"] = ep
        r["pcap_cpu_ratio"] = round(us_p / us, 3)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
