"""Drop tracing during the capture flood: does kvmtui's engine still keep up with tcpdump?

    python bench/droptrace.py [--packets N] [--seconds S]

The flood topology of bench/capture.py (its ``up``/``down``, generator and engine child, imported,
not copied), under prefix ``kvd2x-``; during the flood three processes run on the bridge:
kvmtui's ``CaptureSession``, ``tcpdump -w /dev/null``, and kvmtui's drop tracer
(``DropTracer`` on bbr0, p0, p1: ``skb:kfree_skb`` + ``net:netif_receive_skb``/``net_dev_xmit``
filtered on those names, in a tracefs instance of its own), each in its own process so each
one's CPU is its own. Printed: captured by engine and tcpdump, the ratio (goal >= 0.95), the
tracer's CPU and events read; the last line is JSON.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import capture as bc  # noqa: E402 -- bench/capture.py: the flood topology, generator and engine child

P = "kvd2x-"
NS_SRC, NS_BR = P + "src", P + "br"

TRACER = textwrap.dedent(
    """
    import json, resource, signal, threading
    from kvmtui.doctor.droptrace import DropTracer
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    t = DropTracer(["bbr0", "p0", "p1"]).start()
    print("ready", flush=True)
    stop.wait(300)
    t.stop()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"events": t.events, "drops": len(t.drops()), "thread_cpu_s": t.cpu_s,
                      "paused": t.paused,
                      "cpu_s": ru.ru_utime + ru.ru_stime, "error": t.error}))
    """
)


def _child(code: str, *args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
    )  # fmt: skip
    assert p.stdout is not None
    if p.stdout.readline().strip() != "ready":
        raise SystemExit(f"child did not start: {p.stderr.read() if p.stderr else ''}")
    return p


def run(packets: int, seconds: float) -> dict[str, object]:
    tmp = tempfile.mkdtemp(prefix="kvd2x-bench-")
    procs: list[subprocess.Popen[str]] = []
    try:
        gen = os.path.join(tmp, "gen")
        with open(gen + ".c", "w") as f:
            f.write(bc.GEN_C)
        bc.sh("gcc", "-O2", "-o", gen, gen + ".c")
        bc.up(P)
        tcpdump = subprocess.Popen(
            ["ip", "netns", "exec", NS_BR, "tcpdump", "-i", "bbr0", "-w", "/dev/null",
             "-s", "262144", "-B", "32768", f"ether host {bc.SRC_MAC}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(tcpdump)
        tracer = _child(TRACER)
        procs.append(tracer)
        engine = _child(bc.ENGINE, bc.SRC_MAC, NS_BR, "10000")
        procs.append(engine)
        time.sleep(1.0)  # tcpdump is up too
        g = subprocess.run(
            ["ip", "netns", "exec", NS_SRC, gen, "eth0", str(packets), str(seconds)],
            capture_output=True, text=True, timeout=seconds + 30,
        )  # fmt: skip
        sent = json.loads(g.stdout)
        time.sleep(1.0)
        engine.send_signal(signal.SIGTERM)
        eng = json.loads(engine.communicate(timeout=60)[0].strip().splitlines()[-1])
        tracer.send_signal(signal.SIGTERM)
        trc = json.loads(tracer.communicate(timeout=60)[0].strip().splitlines()[-1])
        tcpdump.send_signal(signal.SIGINT)
        td_cpu, _ = bc.wait4(tcpdump, 10)
        td_err = tcpdump.stderr.read() if tcpdump.stderr else ""
        cap = re.search(r"(\d+) packets captured", td_err)
        td = {"captured": int(cap.group(1)) if cap else -1, "cpu_s": td_cpu}
        return {"sent": sent, "engine": eng, "tcpdump": td, "tracer": trc}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        bc.down(P)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=15.0)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/droptrace.py: run as root (namespaces, AF_PACKET, tracefs)", file=sys.stderr)
        return 1
    r = run(a.packets, a.seconds)
    sent, eng, td, trc = r["sent"], r["engine"], r["tcpdump"], r["tracer"]
    assert isinstance(sent, dict) and isinstance(eng, dict)
    assert isinstance(td, dict) and isinstance(trc, dict)
    n, secs = sent["sent"], sent["seconds"]
    print(f"python: {sys.executable} {platform.python_version()}")
    print(f"flood: {n} frames in {secs:.2f} s = {n / secs / 1000:.0f}k packets/s")
    print(f"engine : captured {eng['received']} dropped {eng['dropped']} cpu {eng['cpu_s']:.2f} s")
    print(f"tcpdump: captured {td['captured']} cpu {td['cpu_s']:.2f} s")
    ratio = eng["received"] / td["captured"] if td["captured"] > 0 else 0.0
    print(f"ratio captured engine/tcpdump with drop tracing on: {ratio:.3f} (goal >= 0.95): "
          f"{'ok' if ratio >= 0.95 else 'BELOW GOAL'}")  # fmt: skip
    print(f"drop tracer: {trc['events']} trace events read, {trc['drops']} drops, process cpu "
          f"{trc['cpu_s']:.2f} s (reader thread {trc['thread_cpu_s']:.2f} s) = "
          f"{trc['cpu_s'] / secs * 100:.0f}% of one core over the flood; sightings paused "
          f"{trc.get('paused', 0)} times (a flood with nothing dropped)")  # fmt: skip
    r["ratio"] = ratio
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
