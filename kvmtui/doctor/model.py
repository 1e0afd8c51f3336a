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
