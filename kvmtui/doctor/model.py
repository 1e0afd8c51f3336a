"""The doctor's contract: findings and packet fates, frozen so they cross threads.

A :class:`Finding` is one thing the doctor concluded, with the facts it read and the command an
admin would run to fix it (kvmtui never runs it). Its JSON form is exactly
``{"code", "severity", "hop", "summary", "evidence", "fix"}``.

A :class:`Fate` is where and why the kernel freed one of the path's packets (``skb:kfree_skb``):
``{"hop": DEV, "reason": "NETFILTER_DROP", "location": "nft_do_chain"}`` on a trace row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
Verdict = Literal["ok", "problem", "unknown"]

SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact a finding rests on, and where it was read (``netlink``, ``nftables``,
    ``sysctl net.ipv4.ip_forward``, ``libvirt``, ``/proc``, ``wire``, ``tracefs``...)."""

    text: str
    source: str

    def as_text(self) -> str:
        return f"{self.text} ({self.source})"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # stable dotted name: "nat.ip_forward_off", "tap.down", ...
    severity: Severity
    hop: str | None  # the device it concerns, or None
    summary: str  # one plain line
    evidence: tuple[Fact, ...] = ()
    fix: str | None = None  # the command or action an admin would run, as text
    rank: int = 100  # lower = more likely the root cause (the engine sorts by it)

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "hop": self.hop,
            "summary": self.summary,
            "evidence": [e.as_text() for e in self.evidence],
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Fate:
    """Where the kernel freed a packet of the path, and why (``skb:kfree_skb``)."""

    hop: str  # the device it was last seen on
    reason: str  # the kernel's drop reason without the SKB_DROP_REASON_ prefix
    location: str  # the freeing function, without the +0x offset
    words: str = ""  # plain words: "dropped at virbr1 by the firewall (nftables rule)"

    def as_json(self) -> dict[str, Any]:
        return {"hop": self.hop, "reason": self.reason, "location": self.location}


def verdict_of(findings: tuple[Finding, ...] | list[Finding]) -> Verdict:
    """ "problem" when any finding is an error, "ok" otherwise."""
    return "problem" if any(f.severity == "error" for f in findings) else "ok"


def ranked(findings: list[Finding] | tuple[Finding, ...]) -> tuple[Finding, ...]:
    """Most likely root cause first: rank, then severity, then code (stable)."""
    return tuple(
        sorted(findings, key=lambda f: (f.rank, SEVERITY_ORDER.get(f.severity, 9), f.code))
    )


@dataclass(frozen=True, slots=True)
class NicDiagnosis:
    """One NIC of a VM: its verdict and its findings, ranked (root cause first)."""

    vm: str
    mac: str
    network: str | None
    tap: str | None
    verdict: Verdict
    findings: tuple[Finding, ...] = ()

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def as_json(self) -> dict[str, Any]:
        return {
            "mac": self.mac,
            "network": self.network,
            "tap": self.tap,
            "verdict": self.verdict,
            "findings": [f.as_json() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class VmDiagnosis:
    name: str
    nics: tuple[NicDiagnosis, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "nics": [n.as_json() for n in self.nics]}


@dataclass(frozen=True, slots=True)
class HostDiagnosis:
    """What ``kvmtui doctor --json`` prints: ``{"host", "vms": [...], "host_findings": [...]}``.
    ``host_findings`` are the findings that concern no single NIC (kept out of ``vms``)."""

    host: str
    taken_at: float
    vms: tuple[VmDiagnosis, ...] = ()
    host_findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  # one line each: what could not be checked and why

    def nic(self, vm: str, mac: str) -> NicDiagnosis | None:
        for v in self.vms:
            if v.name == vm:
                for n in v.nics:
                    if n.mac == mac:
                        return n
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "taken_at": self.taken_at,
            "vms": [v.as_json() for v in self.vms],
            "host_findings": [f.as_json() for f in self.host_findings],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class WatchResult:
    """What ``kvmtui.doctor.watch.watch_paths(snap, paths, seconds, stop=None)`` returns: per NIC
    (by MAC) the findings the wire and the kernel's drop tracepoint showed, and one-line notes
    (what could not be watched: no root, no tracefs)."""

    findings: tuple[tuple[str, tuple[Finding, ...]], ...] = ()  # (mac, findings)
    notes: tuple[str, ...] = ()

    def for_mac(self, mac: str) -> tuple[Finding, ...]:
        return next((fs for m, fs in self.findings if m == mac), ())
