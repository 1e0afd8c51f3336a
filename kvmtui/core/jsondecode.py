"""JSON -> HostSnapshot: the inverse of :mod:`kvmtui.core.jsonout`.

``decode_snapshot(snapshot_json(s)) == s`` for every snapshot (tested on the lab and on the
fixtures), so a recording, a remote agent and a fixture file all carry the host model as the same
``inventory --json`` document. Fields a newer writer adds are ignored; a field an older writer
lacks takes the model's default, and a document without ``paths`` (a hand-made fixture) gets the
paths this kvmtui computes from its model. Anything that is not that document raises
:class:`DecodeError` (one line for the user), never a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

from kvmtui.core.jsonout import SCHEMA
from kvmtui.core.model import (
    Bridge,
    DhcpHost,
    DhcpRange,
    Evidence,
    FdbEntry,
    Hop,
    HostSnapshot,
    Lease,
    Link,
    LinkStats,
    MacOwner,
    Neighbour,
    NetAddress,
    Network,
    NicPath,
    Port,
    PortVlan,
    Problem,
    Route,
    Vm,
    VmNic,
)

T = TypeVar("T")


class DecodeError(ValueError):
    """Not a kvmtui host document (or one of an unknown schema)."""


def _build(cls: type[T], d: Any, **nested: Any) -> T:
    """``cls(**d)`` keeping only the fields ``cls`` knows, with ``nested`` overriding."""
    if not isinstance(d, dict):
        raise DecodeError(f"expected an object for {cls.__name__}, got {type(d).__name__}")
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    kw = {k: v for k, v in d.items() if k in names}
    kw.update(nested)
    try:
        return cls(**kw)
    except TypeError as e:
        raise DecodeError(f"{cls.__name__}: {e}") from None


def _tup(v: Any) -> tuple[Any, ...]:
    if v is None:
        return ()
    if not isinstance(v, list | tuple):
        raise DecodeError(f"expected a list, got {type(v).__name__}")
    return tuple(v)


def _owner(d: Any) -> MacOwner:
    return _build(MacOwner, d)


def _fdb(d: dict[str, Any]) -> FdbEntry:
    return _build(FdbEntry, d, owner=_owner(d.get("owner")))


def _vlans(v: Any) -> tuple[PortVlan, ...]:
    return tuple(_build(PortVlan, x) for x in _tup(v))


def _port(d: dict[str, Any]) -> Port:
    return _build(Port, d, vlans=_vlans(d.get("vlans")))  # "pvid" is derived from "vlans"


def _bridge(d: dict[str, Any]) -> Bridge:
    return _build(
        Bridge,
        d,
        addresses=_tup(d.get("addresses")),
        networks=_tup(d.get("networks")),
        uplinks=_tup(d.get("uplinks")),
        vlans=_vlans(d.get("vlans")),
        ports=tuple(_port(p) for p in _tup(d.get("ports"))),
        fdb=tuple(_fdb(f) for f in _tup(d.get("fdb"))),
    )


def _address(d: dict[str, Any]) -> NetAddress:
    return _build(
        NetAddress,
        d,
        ranges=tuple(_build(DhcpRange, r) for r in _tup(d.get("ranges"))),
        hosts=tuple(_build(DhcpHost, h) for h in _tup(d.get("hosts"))),
    )


def _network(d: dict[str, Any]) -> Network:
    return _build(
        Network,
        d,
        addresses=tuple(_address(a) for a in _tup(d.get("addresses"))),
        leases=tuple(_build(Lease, le) for le in _tup(d.get("leases"))),
        vms=_tup(d.get("vms")),
    )


def _vm(d: dict[str, Any]) -> Vm:
    return _build(Vm, d, nics=tuple(_build(VmNic, n) for n in _tup(d.get("nics"))))


def _link(d: dict[str, Any]) -> Link:
    extra: dict[str, Any] = {
        "addresses": _tup(d.get("addresses")),
        "bond_members": _tup(d.get("bond_members")),
        "stats": _build(LinkStats, d.get("stats") or {}),
    }
    if "promisc" in d:
        extra["flags_promisc"] = bool(d["promisc"])
    return _build(Link, d, **extra)


def _hop(d: dict[str, Any]) -> Hop:
    return _build(Hop, d, evidence=tuple(_build(Evidence, e) for e in _tup(d.get("evidence"))))


def decode_path(d: Any) -> NicPath:
    if not isinstance(d, dict):
        raise DecodeError("expected a path object")
    return _build(
        NicPath, d, hops=tuple(_hop(h) for h in _tup(d.get("hops"))), notes=_tup(d.get("notes"))
    )


def decode_snapshot(d: Any) -> HostSnapshot:
    """The snapshot an ``inventory --json`` document describes. Raises :class:`DecodeError`."""
    if not isinstance(d, dict) or "taken_at" not in d or "host" not in d:
        raise DecodeError("not a kvmtui host snapshot (no taken_at/host)")
    schema = d.get("schema")
    if schema != SCHEMA:
        raise DecodeError(f"host snapshot schema {schema!r}, this kvmtui reads schema {SCHEMA}")
    try:
        snap = HostSnapshot(
            taken_at=float(d["taken_at"]),
            hostname=str(d["host"]),
            libvirt_uri=d.get("libvirt_uri"),
            uplink=d.get("uplink"),
            ip_forward=d.get("ip_forward"),
            bridges=tuple(_bridge(b) for b in _tup(d.get("bridges"))),
            networks=tuple(_network(n) for n in _tup(d.get("networks"))),
            vms=tuple(_vm(v) for v in _tup(d.get("vms"))),
            links=tuple(_link(lk) for lk in _tup(d.get("links"))),
            routes=tuple(_build(Route, r) for r in _tup(d.get("routes"))),
            neighbours=tuple(_build(Neighbour, n) for n in _tup(d.get("neighbours"))),
            paths=tuple(decode_path(p) for p in _tup(d.get("paths"))),
            problems=tuple(_build(Problem, p) for p in _tup(d.get("problems"))),
        )
        if "paths" not in d:  # a document written without them (a fixture): today's rules
            from kvmtui.core.paths import compute_paths

            snap = replace(snap, paths=compute_paths(snap))
        return snap
    except (TypeError, ValueError, AttributeError) as e:
        if isinstance(e, DecodeError):
            raise
        raise DecodeError(f"malformed host snapshot: {e}") from None
