"""``lab status``: what of the lab is up (namespaces, processes, libvirt networks, VMs, IPs)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from kvmtui.lab import spec
from kvmtui.lab.builder import Lab
from kvmtui.lab.probe import Owner, light_vm_ip, qemu_vm_ip
from kvmtui.lab.procs import LabError, netns_inode


def lab_status(prefix: str) -> dict[str, Any]:
    lab = Lab(prefix)
    owner = Owner.load(lab.state)
    namespaces = {ns: netns_inode(ns) is not None for ns in lab.all_namespaces()}
    processes = {name: lab.pids.alive(name) for name in lab.pids.names()}
    qemu_enabled = False
    with contextlib.suppress(OSError), open(lab.path("qemu_enabled")) as f:
        qemu_enabled = f.read().strip() == "1"
    networks: dict[str, bool] = {}
    domains: dict[str, bool] = {}
    libvirt_error = None
    if processes.get("libvirtd"):
        from kvmtui.lab import libvirtd

        try:
            with libvirtd.connect(lab.uri, timeout=2) as conn:
                for net in conn.listAllNetworks():
                    networks[net.name()] = bool(net.isActive())
                for dom in conn.listAllDomains():
                    domains[dom.name()] = bool(dom.isActive())
        except LabError as exc:
            libvirt_error = str(exc)
    vms = []
    for vm in spec.LIGHT_VMS:
        ns = spec.ns_name(prefix, vm.name)
        vms.append(
            {
                "name": vm.name,
                "kind": vm.kind,
                "network": vm.network,
                "mac": vm.mac,
                "namespace": ns,
                "running": bool(processes.get(f"vm-{vm.name}")),
                "ip": light_vm_ip(prefix, vm) if namespaces.get(ns) else None,
            }
        )
    for vm in spec.QEMU_VMS:
        if vm.name not in domains and not qemu_enabled:
            continue
        running = domains.get(vm.name, False)
        vms.append(
            {
                "name": vm.name,
                "kind": vm.kind,
                "network": vm.network,
                "mac": vm.mac,
                "namespace": None,
                "running": running,
                "ip": qemu_vm_ip(lab.state, vm) if running else None,
            }
        )
    exists = owner is not None
    up = (
        exists
        and all(namespaces.values())
        and bool(processes.get("libvirtd"))
        and all(networks.get(n, False) for n in (spec.NAT_NET, spec.ISO_NET, spec.BR_NET))
        and all(v["running"] and v["ip"] for v in vms)
    )
    return {
        "prefix": prefix,
        "exists": exists,
        "up": up,
        "state_dir": lab.state,
        "uri": lab.uri,
        "host_ns": lab.host,
        "qemu": qemu_enabled,
        "namespaces": namespaces,
        "processes": processes,
        "libvirtd": processes.get("libvirtd"),
        "libvirt_error": libvirt_error,
        "networks": networks,
        "domains": domains,
        "vms": vms,
        "state_dir_exists": os.path.isdir(lab.state),
    }


def format_status(st: dict[str, Any]) -> str:
    if not st["exists"] and not any(st["namespaces"].values()):
        return f"lab {st['prefix']}: not up (kvmtui lab --prefix {st['prefix']} up)"
    lines = [
        f"lab {st['prefix']}: {'up' if st['up'] else 'NOT fully up (run lab up to repair)'}",
        f"  folder     {st['state_dir']}",
        f"  libvirt    {st['uri']}",
        "  namespaces "
        + " ".join(f"{ns}{'' if on else '(missing)'}" for ns, on in st["namespaces"].items()),
        "  processes  "
        + " ".join(f"{n}={pid if pid else 'dead'}" for n, pid in st["processes"].items()),
        "  networks   "
        + (
            " ".join(f"{n}={'active' if a else 'inactive'}" for n, a in st["networks"].items())
            or (st["libvirt_error"] or "libvirtd not running")
        ),
    ]
    for vm in st["vms"]:
        state = "running" if vm["running"] else "stopped"
        lines.append(
            f"  vm {vm['name']:<10} {vm['kind']:<5} {vm['network']:<9} {vm['mac']}  "
            f"{state:<8} {vm['ip'] or '-'}"
        )
    return "\n".join(lines)
