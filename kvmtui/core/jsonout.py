"""HostSnapshot -> JSON-ready dicts: the stable interface of ``kvmtui inventory --json`` and
``kvmtui path --json``, documented in the README ("JSON interface"). Bump ``SCHEMA`` when a
field changes meaning or goes away; adding a field does not bump it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kvmtui.core.model import (
    Bridge,
    FdbEntry,
    Hop,
    HostSnapshot,
    Link,
    MacOwner,
    Network,
    NicPath,
    Port,
    PortVlan,
    Vm,
)

SCHEMA = 1


def owner_json(o: MacOwner) -> dict[str, Any]:
    return {
        "kind": o.kind,
        "name": o.name,
        "nic": o.nic,
        "ip": o.ip,
        "ip_source": o.ip_source,
        "label": o.label(),
    }


def fdb_json(f: FdbEntry) -> dict[str, Any]:
    return {
        "mac": f.mac,
        "port": f.port,
        "vlan": f.vlan,
        "kind": f.kind,
        "age_s": None if f.age_s is None else round(f.age_s, 2),
        "owner": owner_json(f.owner),
    }


def vlans_json(vlans: tuple[PortVlan, ...]) -> list[dict[str, Any]]:
    return [{"vid": v.vid, "pvid": v.pvid, "untagged": v.untagged} for v in vlans]


def port_json(p: Port) -> dict[str, Any]:
    return {
        "name": p.name,
        "index": p.index,
        "kind": p.kind,
        "state": p.state,
        "stp_state": p.stp_state,
        "learning": p.learning,
        "flooding": p.flooding,
        "mac": p.mac,
        "owner": p.owner,
        "vm": p.vm,
        "peer_netns": p.peer_netns,
        "pvid": p.pvid,
        "vlans": vlans_json(p.vlans),
    }


def bridge_json(b: Bridge) -> dict[str, Any]:
    return {
        "name": b.name,
        "index": b.index,
        "mac": b.mac,
        "state": b.state,
        "stp": b.stp,
        "forward_delay_s": b.forward_delay_s,
        "addresses": list(b.addresses),
        "networks": list(b.networks),
        "uplinks": list(b.uplinks),
        "vlan_filtering": b.vlan_filtering,
        "vlans": vlans_json(b.vlans),
        "ports": [port_json(p) for p in b.ports],
        "fdb": [fdb_json(f) for f in b.fdb],
    }


def network_json(n: Network) -> dict[str, Any]:
    return {
        "name": n.name,
        "uuid": n.uuid,
        "mode": n.mode,
        "bridge": n.bridge,
        "forward_dev": n.forward_dev,
        "active": n.active,
        "autostart": n.autostart,
        "addresses": [
            {
                "address": a.address,
                "prefix": a.prefix,
                "family": a.family,
                "ranges": [{"start": r.start, "end": r.end} for r in a.ranges],
                "hosts": [{"mac": h.mac, "ip": h.ip, "name": h.name} for h in a.hosts],
            }
            for a in n.addresses
        ],
        "leases": [
            {
                "mac": le.mac,
                "ip": le.ip,
                "prefix": le.prefix,
                "hostname": le.hostname,
                "expiry": le.expiry,
                "client_id": le.client_id,
            }
            for le in n.leases
        ],
        "nat_rule": n.nat_rule,
        "nat_rule_evidence": n.nat_rule_evidence,
        "vms": list(n.vms),
    }


def vm_json(v: Vm) -> dict[str, Any]:
    return {
        "name": v.name,
        "uuid": v.uuid,
        "kind": v.kind,
        "state": v.state,
        "domain_id": v.domain_id,
        "pid": v.pid,
        "nics": [
            {
                "mac": n.mac,
                "type": n.type,
                "model": n.model,
                "network": n.network,
                "bridge": n.bridge,
                "tap": n.tap,
                "ip": n.ip,
                "ip_source": n.ip_source,
                "ip_seen_at": n.ip_seen_at,
            }
            for n in v.nics
        ],
    }


def link_json(lk: Link) -> dict[str, Any]:
    return {
        "index": lk.index,
        "name": lk.name,
        "kind": lk.kind,
        "state": lk.state,
        "mac": lk.mac,
        "mtu": lk.mtu,
        "master": lk.master,
        "master_index": lk.master_index,
        "peer_index": lk.peer_index,
        "peer_netns_id": lk.peer_netns_id,
        "peer_netns": lk.peer_netns,
        "promisc": lk.flags_promisc,
        "addresses": list(lk.addresses),
        "lower": lk.lower,
        "macvlan_mode": lk.macvlan_mode,
        "vlan_id": lk.vlan_id,
        "bond_mode": lk.bond_mode,
        "bond_members": list(lk.bond_members),
        "vlan_filtering": lk.vlan_filtering,
        "stats": {
            "rx_bytes": lk.stats.rx_bytes,
            "tx_bytes": lk.stats.tx_bytes,
            "rx_packets": lk.stats.rx_packets,
            "tx_packets": lk.stats.tx_packets,
            "rx_dropped": lk.stats.rx_dropped,
            "tx_dropped": lk.stats.tx_dropped,
        },
    }


def hop_json(h: Hop) -> dict[str, Any]:
    return {
        "dev": h.dev,
        "role": h.role,
        "ok": h.ok,
        "vlan": h.vlan,
        "tagged": h.tagged,
        "evidence": [{"what": e.what, "value": e.value, "ok": e.ok} for e in h.evidence],
    }


def path_json(p: NicPath) -> dict[str, Any]:
    return {
        "vm": p.vm,
        "mac": p.mac,
        "mode": p.mode,
        "way_out": p.way_out,
        "verdict": p.verdict,
        "notes": list(p.notes),
        "hops": [hop_json(h) for h in p.hops],
    }


def snapshot_json(s: HostSnapshot) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "taken_at": s.taken_at,
        "host": s.hostname,
        "libvirt_uri": s.libvirt_uri,
        "uplink": s.uplink,
        "ip_forward": s.ip_forward,
        "bridges": [bridge_json(b) for b in s.bridges],
        "networks": [network_json(n) for n in s.networks],
        "vms": [vm_json(v) for v in s.vms],
        "links": [link_json(lk) for lk in s.links],
        "routes": [
            {
                "dst": r.dst,
                "dev": r.dev,
                "gateway": r.gateway,
                "table": r.table,
                "prefsrc": r.prefsrc,
            }
            for r in s.routes
        ],
        "neighbours": [
            {"ip": n.ip, "mac": n.mac, "dev": n.dev, "state": n.state} for n in s.neighbours
        ],
        "paths": [path_json(p) for p in s.paths],
        "problems": [{"source": p.source, "message": p.message} for p in s.problems],
    }


def dumps(obj: Any) -> str:
    """Indented for a person at a terminal; compact when piped (a program reads it): the
    indented form runs json's pure-Python encoder, about 10x slower on a 1,000-port host."""
    if sys.stdout.isatty():
        return json.dumps(obj, indent=2, sort_keys=False)
    return json.dumps(obj, separators=(",", ":"))
