"""Read-only NAT check: which MASQUERADE/SNAT rules exist, and for which source subnets.

libvirt 9 writes its rules with the ``iptables`` binary, which on this kind of host is
iptables-nft: the rules live in nftables tables (``ip nat`` chain ``LIBVIRT_PRT``). We dump
them with pyroute2's nfnetlink socket (never ``nft``/``iptables`` output) and decode the few
expressions that matter:

- ``payload`` network header offset 12 (IPv4 source) or 16 (destination), length L, then
  optionally ``bitwise`` (a non-byte-aligned mask), then ``cmp`` eq/neq: a source/destination
  prefix match;
- the NAT verdict: xtables ``target`` MASQUERADE/SNAT (iptables-nft) or native ``masq`` /
  ``nat`` (type snat) expressions (nft rulesets).

Nothing is ever written.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from kvmtui.core.model import Problem
from kvmtui.core.netns import in_netns

NFPROTO_INET = 1
NFPROTO_IPV4 = 2


@dataclass(frozen=True, slots=True)
class NatRule:
    table: str
    chain: str
    action: str  # MASQUERADE or SNAT
    saddr: str | None  # "192.168.122.0/24"; None = any source
    saddr_negated: bool = False
    daddr: str | None = None
    daddr_negated: bool = False
    l4proto: int | None = None
    packets: int | None = None

    def describe(self) -> str:
        src = ("!" if self.saddr_negated else "") + (self.saddr or "any")
        dst = ("!" if self.daddr_negated else "") + (self.daddr or "any")
        proto = {6: " tcp", 17: " udp"}.get(self.l4proto or -1, "")
        pk = f", {self.packets} packets" if self.packets is not None else ""
        return f"{self.action} in {self.table} {self.chain}:{proto} {src} -> {dst}{pk}"

    def covers(self, subnet: str) -> bool:
        """Does this rule translate (some) traffic leaving ``subnet``?"""
        if self.saddr is None:
            return True
        net = ipaddress.ip_network(subnet, strict=False)
        rule = ipaddress.ip_network(self.saddr, strict=False)
        if net.version != rule.version:
            return False
        if self.saddr_negated:
            return not net.overlaps(rule)
        return net.subnet_of(rule)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class FirewallState:
    nat_rules: tuple[NatRule, ...] = ()
    problems: tuple[Problem, ...] = ()
    read_ok: bool = False

    def nat_for(self, subnet: str) -> tuple[bool | None, str]:
        """(covered?, evidence). None when the rules could not be read."""
        if not self.read_ok:
            return None, "firewall rules not readable"
        # Prefer an all-protocols rule (libvirt adds tcp, udp, then one for the rest)
        hits = [r for r in self.nat_rules if r.covers(subnet)]
        if not hits:
            return False, f"no MASQUERADE/SNAT rule for {subnet}"
        best = next((r for r in hits if r.l4proto is None), hits[0])
        return True, best.describe()


def nft_attrs(obj: Any) -> dict[str, Any]:
    """A pyroute2 netlink object's (or its dict form's) attributes as a dict."""
    if isinstance(obj, dict):
        return dict(obj.get("attrs", []))
    return dict(getattr(obj, "get", lambda *_: [])("attrs") or [])


def nft_value(expr: dict[str, Any], key: str) -> bytes | None:
    """The bytes of an expression's data attribute ``key`` (NFTA_CMP_DATA of a cmp,
    NFTA_BITWISE_MASK of a bitwise), None when it is absent or unreadable."""
    data = expr.get(key)
    if data is None:
        return None
    val = nft_attrs(data).get("NFTA_DATA_VALUE")
    if isinstance(val, bytes | bytearray):
        return bytes(val)
    if isinstance(val, str):  # pyroute2 sometimes returns hex "c0:a8:7a"
        try:
            return bytes(int(x, 16) for x in val.split(":"))
        except ValueError:
            return None
    return None


def _prefix(value: bytes, mask: bytes | None) -> str | None:
    """An address prefix from a compared value (L bytes) and an optional mask."""
    full = value + b"\x00" * (4 - len(value)) if len(value) <= 4 else None
    if full is None:
        return None
    if mask is None:
        plen = 8 * len(value)
    else:
        bits = int.from_bytes(mask + b"\x00" * (4 - len(mask)), "big")
        plen = bin(bits).count("1")
    try:
        return str(ipaddress.IPv4Network((int.from_bytes(full, "big"), plen), strict=False))
    except ValueError:
        return None


def decode_rule(table: str, chain: str, exprs: list[Any]) -> NatRule | None:
    """Decode one rule's expression list; a NatRule if it ends in a source NAT."""
    reg: tuple[str, int] | None = None  # ("saddr"|"daddr"|"l4proto", length)
    mask: bytes | None = None
    saddr = daddr = None
    s_neg = d_neg = False
    l4: int | None = None
    packets: int | None = None
    action: str | None = None
    for e in exprs:
        name = e.get_attr("NFTA_EXPR_NAME") if hasattr(e, "get_attr") else e.get("name")
        data = nft_attrs(e.get_attr("NFTA_EXPR_DATA") if hasattr(e, "get_attr") else e.get("data"))
        if name == "payload":
            base = data.get("NFTA_PAYLOAD_BASE")
            off = data.get("NFTA_PAYLOAD_OFFSET")
            ln = int(data.get("NFTA_PAYLOAD_LEN") or 0)
            reg = None
            mask = None
            if base in ("NFT_PAYLOAD_NETWORK_HEADER", 1) and off == 12:
                reg = ("saddr", ln)
            elif base in ("NFT_PAYLOAD_NETWORK_HEADER", 1) and off == 16:
                reg = ("daddr", ln)
        elif name == "meta":
            key = data.get("NFTA_META_KEY")
            reg = ("l4proto", 1) if key in ("NFT_META_L4PROTO", 16) else None
            mask = None
        elif name == "bitwise":
            mask = nft_value(data, "NFTA_BITWISE_MASK")
        elif name == "cmp" and reg is not None:
            op = data.get("NFTA_CMP_OP")
            val = nft_value(data, "NFTA_CMP_DATA")
            if val is None:
                continue
            neg = op in ("NFT_CMP_NEQ", 1)
            if reg[0] == "l4proto":
                l4 = val[0] if val else None
            elif reg[0] == "saddr":
                saddr, s_neg = _prefix(val, mask), neg
            elif reg[0] == "daddr":
                daddr, d_neg = _prefix(val, mask), neg
            reg = None
            mask = None
        elif name == "counter":
            p = data.get("NFTA_COUNTER_PACKETS")
            packets = int(p) if p is not None else None
        elif name == "target":
            tname = data.get("NFTA_TARGET_NAME")
            if tname in ("MASQUERADE", "SNAT"):
                action = str(tname)
        elif name == "masq":
            action = "MASQUERADE"
        elif name == "nat":
            ntype = data.get("NFTA_NAT_TYPE")
            if ntype in ("NFT_NAT_SNAT", 0):
                action = "SNAT"
    if action is None:
        return None
    return NatRule(table, chain, action, saddr, s_neg, daddr, d_neg, l4, packets)


def read_firewall(netns: str | None = None) -> FirewallState:
    """Dump every nftables rule of the namespace and keep the source-NAT ones."""
    try:
        from pyroute2.nftables.main import NFTables
    except ImportError as exc:  # pragma: no cover - pyroute2 is a hard dependency
        return FirewallState(problems=(Problem("firewall", f"firewall: pyroute2: {exc}"),))
    try:
        with in_netns(netns):
            nft = NFTables(nfgen_family=0)
        try:
            rules = nft.get_rules()
        finally:
            nft.close()
    except Exception as exc:
        code = getattr(exc, "code", None) or getattr(exc, "errno", None)
        if isinstance(exc, PermissionError) or code == 1:
            msg = "firewall: cannot read nftables rules (Operation not permitted): "
            msg += "run as root to check NAT rules"
        else:
            msg = f"firewall: cannot read nftables rules ({exc or type(exc).__name__})"
        return FirewallState(problems=(Problem("firewall", msg),))
    out: list[NatRule] = []
    for r in rules:
        if r.get("nfgen_family") not in (NFPROTO_IPV4, NFPROTO_INET):
            continue
        exprs = r.get_attr("NFTA_RULE_EXPRESSIONS") or []
        rule = decode_rule(
            str(r.get_attr("NFTA_RULE_TABLE")), str(r.get_attr("NFTA_RULE_CHAIN")), exprs
        )
        if rule is not None:
            out.append(rule)
    return FirewallState(nat_rules=tuple(out), read_ok=True)
