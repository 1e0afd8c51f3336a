"""``kvmtui inventory`` and ``kvmtui path``: the host model as readable text or stable JSON."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import TextIO

from kvmtui.core.jsonout import SCHEMA, dumps, path_json, snapshot_json
from kvmtui.core.model import Evidence, HostSnapshot, NicPath, PortVlan, Vm
from kvmtui.core.wire import apply_wire, listen, seen_words


def _read(args: argparse.Namespace) -> HostSnapshot:
    """The host ``args`` names (this one, ``--replay FILE`` or ``--host``): kvmtui.core.hosts.
    A host that cannot be read exits with its one line (SystemExit with HostUnavailable.code)."""
    from kvmtui.core.hosts import HostUnavailable, read_snapshot

    try:
        return read_snapshot(args)
    except HostUnavailable as e:
        print(f"kvmtui: {e}", file=sys.stderr)
        raise SystemExit(e.code) from None


def _ok(flag: bool | None) -> str:
    return {True: "ok", False: "NO", None: "?"}[flag]


def _age(age: float | None) -> str:
    return "-" if age is None else f"{age:.0f}s"


def print_problems(snap: HostSnapshot, out: TextIO) -> None:
    for p in snap.problems:
        print(f"! {p.message}", file=out)


def _ev_text(e: Evidence) -> str:
    return f"{e.what}: {e.value}" + ("" if e.ok is None else f" [{_ok(e.ok)}]")


def print_path(p: NicPath, out: TextIO, indent: str = "  ", detailed: bool = False) -> None:
    chain = " -> ".join(h.dev or h.role.upper() for h in p.hops) or "(no hops)"
    verdict = p.verdict if not p.way_out else f"way out: {p.verdict}"
    print(f"{indent}{p.vm} {p.mac} [{p.mode}] {chain}", file=out)
    print(f"{indent}  {verdict}", file=out)
    for note in p.notes:
        print(f"{indent}  note: {note}", file=out)
    for h in p.hops:
        head = f"{indent}    {h.role:<7} {h.dev or '-':<10}"
        if not detailed:
            print(f"{head} {'; '.join(_ev_text(e) for e in h.evidence)}", file=out)
            continue
        print(head.rstrip(), file=out)
        for e in h.evidence:
            print(f"{indent}      {_ev_text(e)}", file=out)


def _vlan_text(v: PortVlan) -> str:
    """As ``bridge vlan show`` words it: ``20 PVID untagged``."""
    return f"{v.vid}" + (" PVID" if v.pvid else "") + (" untagged" if v.untagged else "")


def print_inventory(snap: HostSnapshot, out: TextIO) -> None:
    fwd = {True: "1", False: "0", None: "?"}[snap.ip_forward]
    print(
        f"host {snap.hostname}  uplink {snap.uplink or '-'}  ip_forward {fwd}  "
        f"libvirt {snap.libvirt_uri or '-'}",
        file=out,
    )
    print("\nBRIDGES", file=out)
    if not snap.bridges:
        print("  (none)", file=out)
    for b in snap.bridges:
        nets = f"  network {','.join(b.networks)}" if b.networks else ""
        addrs = f"  {' '.join(b.addresses)}" if b.addresses else ""
        stp = "on" if b.stp else "off"
        aware = "  vlan-aware" if b.vlan_filtering else ""
        print(f"  {b.name}  {b.state}  {b.mac}{addrs}{nets}  stp {stp}{aware}", file=out)
        for p in b.ports:
            who = f"  {p.owner}" if p.owner else ""
            lk = snap.link(p.name)
            if lk is not None and lk.bond_members:
                who += f"  bond {lk.bond_mode or '?'}: {' '.join(lk.bond_members)}"
            if p.vlans:
                who += "  vlan " + ", ".join(_vlan_text(v) for v in p.vlans)
            print(
                f"    port {p.name:<10} {p.kind:<8} {p.state:<6} {p.stp_state:<10}{who}", file=out
            )
        for f in b.fdb:
            ip = f" {f.owner.ip} ({f.owner.ip_source})" if f.owner.ip else ""
            if f.owner.kind == "neighbour":
                ip = " (neighbour table)"
            vlan = f" vlan {f.vlan}" if f.vlan else ""
            print(
                f"    fdb  {f.mac}  {f.port:<10} {f.kind:<9} {_age(f.age_s):>5}  "
                f"{f.owner.label()}{ip}{vlan}",
                file=out,
            )
    print("\nNETWORKS", file=out)
    if not snap.networks:
        print("  (none)", file=out)
    for n in snap.networks:
        flags = ("active" if n.active else "inactive") + (" autostart" if n.autostart else "")
        addrs = " ".join(f"{a.address}/{a.prefix}" for a in n.addresses)
        dev = f" dev {n.forward_dev}" if n.forward_dev else ""
        nat = ""
        if n.mode == "nat":
            nat = f"  NAT rule {_ok(n.nat_rule)}"
        line = f"  {n.name}  {n.mode}{dev}  bridge {n.bridge or '-'}  {flags}  {addrs}{nat}"
        print(line.rstrip(), file=out)
        for a in n.addresses:
            for r in a.ranges:
                print(f"    dhcp range {r.start} - {r.end}", file=out)
            for h in a.hosts:
                print(f"    dhcp host  {h.mac or '-'} {h.ip} {h.name or ''}".rstrip(), file=out)
        for le in n.leases:
            print(f"    lease {le.mac} {le.ip} {le.hostname or '-'}", file=out)
    print("\nVMS", file=out)
    if not snap.vms:
        print("  (none)", file=out)
    for v in snap.vms:
        pid = f"  pid {v.pid}" if v.pid else ""
        print(f"  {v.name}  {v.state}  {v.kind}{pid}", file=out)
        for nic in v.nics:
            ip = f"{nic.ip} ({nic.ip_source})" if nic.ip else "no IP seen"
            if nic.ip and nic.ip_source == "wire":
                ip = f"{nic.ip} ({seen_words(nic.ip_seen_at, snap.taken_at)})"
            where = nic.network or nic.bridge or "-"
            print(
                f"    nic {nic.mac} {nic.type} {nic.model or ''} tap {nic.tap or '-'} "
                f"on {where} bridge {nic.bridge or '-'}  {ip}",
                file=out,
            )
    print("\nPATHS", file=out)
    if not snap.paths:
        print("  (none)", file=out)
    for path in snap.paths:
        print_path(path, out)
    if snap.problems:
        print("\nPROBLEMS", file=out)
        print_problems(snap, out)


def run_inventory(args: argparse.Namespace) -> int:
    snap = _read(args)
    secs = getattr(args, "listen", None)
    if secs:
        # ARP and DHCP on every bridge for a while: IPs the neighbour table has forgotten
        table, err = listen([b.name for b in snap.bridges], float(secs))
        if err:
            print(f"kvmtui: {err}", file=sys.stderr)
        snap = apply_wire(dataclasses.replace(snap, taken_at=time.time()), table)
    if getattr(args, "json", False):
        print(dumps(snapshot_json(snap)))
    else:
        print_inventory(snap, sys.stdout)
    return 0


def find_vm(snap: HostSnapshot, key: str) -> Vm | None:
    """A VM by name, tap name or MAC (of its NIC)."""
    k = key.strip()
    mac = k.lower()
    for v in snap.vms:
        if v.name == k:
            return v
    for v in snap.vms:
        if any(n.tap == k or n.mac == mac for n in v.nics):
            return v
    # a namespace guest by its name without the namespace prefix (kvmtui-nat-light: nat-light)
    hits = [v for v in snap.vms if v.kind == "light" and v.name.endswith("-" + k)]
    return hits[0] if len(hits) == 1 else None


def run_path(args: argparse.Namespace) -> int:
    snap = _read(args)
    key = str(args.vm)
    vm = find_vm(snap, key)
    if vm is None:
        known = ", ".join(v.name for v in snap.vms) or "none"
        print(
            f"kvmtui: no VM, tap or MAC {key!r} on this host. Known VMs: {known}", file=sys.stderr
        )
        print_problems(snap, sys.stderr)
        return 2
    paths = snap.paths_of(vm.name)
    # a tap or MAC selects one NIC of the VM
    sel = [p for p in paths if p.mac == key.lower()]
    sel = sel or [p for p in paths if any(n.tap == key and n.mac == p.mac for n in vm.nics)]
    paths = tuple(sel) if sel else paths
    if getattr(args, "json", False):
        print(
            dumps(
                {
                    "schema": SCHEMA,
                    "vm": vm.name,
                    "paths": [path_json(p) for p in paths],
                    "problems": [{"source": p.source, "message": p.message} for p in snap.problems],
                }
            )
        )
    else:
        if not paths:
            print(f"{vm.name}: no NICs")
        for p in paths:
            print_path(p, sys.stdout, indent="", detailed=True)
        print_problems(snap, sys.stdout)
    return 0
