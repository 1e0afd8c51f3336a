"""bench/doctor.py: ``kvmtui doctor --json`` (no --watch) against ``kvmtui inventory --json`` on
the lab, both the whole command inside the lab's KVM host namespace, in the same run.

    .venv/bin/python bench/doctor.py [--prefix kvb-] [--rounds 5] [--keep]

Brings the lab up (light VMs) when it is not, and down at the end unless --keep or it was up
already. Ends with one JSON line: {"doctor_ms": [...], "inventory_ms": [...], "ratio": ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from kvmtui.lab import spec


def _timed(prefix: str, *args: str) -> float:
    cmd = ["ip", "netns", "exec", spec.ns_name(prefix, spec.NS_HOST), sys.executable, "-m",
           "kvmtui", "-c", spec.libvirt_uri(prefix), *args]  # fmt: skip
    t0 = time.perf_counter()
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dt = (time.perf_counter() - t0) * 1000
    if cp.returncode not in (0, 1) or not cp.stdout.startswith("{"):
        raise SystemExit(f"{' '.join(args)} failed ({cp.returncode}): {cp.stderr.strip()[-300:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", default="kvb-")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    was_up = os.path.exists(f"/run/netns/{spec.ns_name(a.prefix, spec.NS_HOST)}")
    lab = [sys.executable, "-m", "kvmtui", "lab", "--prefix", a.prefix]
    if not was_up:
        subprocess.run([*lab, "up", "--no-qemu", "--quiet"], check=True, timeout=300)
    try:
        _timed(a.prefix, "doctor", "--json")  # warm the page cache once
        doc, inv = [], []
        for _ in range(a.rounds):
            doc.append(_timed(a.prefix, "doctor", "--json"))
            inv.append(_timed(a.prefix, "inventory", "--json"))
    finally:
        if not was_up and not a.keep:
            subprocess.run([*lab, "down"], timeout=120)
    d, i = statistics.median(doc), statistics.median(inv)
    print(f"kvmtui doctor --json:    median {d:.0f} ms, max {max(doc):.0f} ms (goal < 1500 ms)")
    print(f"kvmtui inventory --json: median {i:.0f} ms (same run)")
    print(f"ratio doctor / inventory: {d / i:.2f}")
    out = {"doctor_ms": [round(x) for x in doc], "inventory_ms": [round(x) for x in inv],
           "ratio": round(d / i, 3)}  # fmt: skip
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
