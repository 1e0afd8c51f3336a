"""``kvmtui doctor [VM] [--watch SECONDS] [--json]``: what is wrong with a VM's network, ranked.

Every NIC of one VM (or of every VM): a verdict and the findings, the likeliest root cause
first, each with the facts read and the command an admin would run (kvmtui never runs it).
``--watch S`` also watches each path for S seconds (DHCP, ARP, hop by hop, and the kernel's own
drop reasons). Exit codes: 0 no error finding, 1 an error finding, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TextIO

from kvmtui.core.hosts import HostUnavailable, read_snapshot
from kvmtui.core.model import HostSnapshot
from kvmtui.core.resolve import UnknownVm, resolve
from kvmtui.doctor.model import HostDiagnosis, NicDiagnosis, VmDiagnosis, ranked, verdict_of

_MARK = {"error": "✗", "warning": "!", "info": "i"}


def _watch(snap: HostSnapshot, diag: HostDiagnosis, seconds: float) -> HostDiagnosis:
    from kvmtui.doctor.watch import watch_paths

    names = {v.name for v in diag.vms}
    paths = [p for p in snap.paths if p.vm in names]
    print(f"kvmtui: watching {len(paths)} path(s) for {seconds:g} s ...", file=sys.stderr)
    result = watch_paths(snap, paths, seconds)
    vms = []
    for v in diag.vms:
        nics = []
        for n in v.nics:
            extra = result.for_mac(n.mac)
            if extra:
                fs = ranked((*n.findings, *extra))
                n = replace(n, findings=fs, verdict=verdict_of(fs))
            nics.append(n)
        vms.append(replace(v, nics=tuple(nics)))
    return replace(diag, vms=tuple(vms), notes=(*diag.notes, *result.notes))


def print_nic(n: NicDiagnosis, out: TextIO) -> None:
    where = f"{n.mac} on {n.tap or 'no tap'}, network {n.network or '-'}"
    print(f"  NIC {where}: {n.verdict.upper()}", file=out)
    if not n.findings:
        print("    nothing wrong found", file=out)
    for f in n.findings:
        hop = f" [{f.hop}]" if f.hop else ""
        print(f"    {_MARK.get(f.severity, '?')} {f.severity}{hop} {f.code}: {f.summary}", file=out)
        for e in f.evidence:
            print(f"        seen: {e.as_text()}", file=out)
        if f.fix and f.severity != "info":
            print(f"        fix:  {f.fix}", file=out)


def print_diagnosis(diag: HostDiagnosis, out: TextIO) -> None:
    if not diag.vms:
        print("No VMs on this host.", file=out)
    for v in diag.vms:
        print(f"VM {v.name}", file=out)
        if not v.nics:
            print("  no NICs", file=out)
        for n in v.nics:
            print_nic(n, out)
    for note in diag.notes:
        print(f"note: {note}", file=out)


def run_doctor(args: argparse.Namespace) -> int:
    try:
        snap = read_snapshot(args)
    except HostUnavailable as exc:
        print(f"kvmtui: {exc}", file=sys.stderr)
        return exc.code
    from kvmtui.doctor.engine import diagnose_host

    diag = diagnose_host(snap, uri=getattr(args, "connect", None))
    key = getattr(args, "vm", None)
    if key:
        try:
            sel = resolve(snap, str(key))
        except UnknownVm as exc:
            print(f"kvmtui: {exc}", file=sys.stderr)
            return 2
        macs = {n.mac for n in sel.nics}
        vms = tuple(
            VmDiagnosis(v.name, tuple(n for n in v.nics if n.mac in macs))
            for v in diag.vms
            if v.name == sel.vm.name
        )
        diag = replace(diag, vms=vms)
    watch = getattr(args, "watch", None)
    if watch:
        diag = _watch(snap, diag, float(watch))
    if getattr(args, "json", False):
        print(json.dumps(diag.as_json()))
    else:
        print_diagnosis(diag, sys.stdout)
    errors = any(f.severity == "error" for v in diag.vms for n in v.nics for f in n.findings)
    return 1 if errors else 0
