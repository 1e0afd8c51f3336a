"""What the host firewall does to one probe packet: the first final verdict at a netfilter hook.

The rules are read read-only through pyroute2's nfnetlink socket (where iptables-nft, libvirt,
Docker and nft rulesets all end up), decoded into simple matches, and walked the way the kernel
walks them: base chains of the hook by priority, rules in order, jumps and gotos followed, the
chain's policy at the end. Matches kvmtui cannot evaluate (conntrack state, physdev, sets, marks)
count as "does not match" for an ACCEPT or DROP alike, so a verdict that rests on them is never
invented; the probe is a *new* connection, as the VM's first packet is.

A probe is a dict with any of: ``iif``, ``oif`` (device names), ``saddr``, ``daddr`` (IPv4),
``l4proto`` (6, 17, 1), ``dport``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kvmtui.core.firewall import nft_attrs, nft_value
from kvmtui.core.netns import in_netns

HOOKS = {"input": 1, "forward": 2}
_VERDICTS = {
    "NF_DROP": "drop", 0: "drop",
    "NF_ACCEPT": "accept", 1: "accept",
    "NFT_CONTINUE": "continue", -1: "continue",
    "NFT_BREAK": "break", -2: "break",
    "NFT_JUMP": "jump", -3: "jump",
    "NFT_GOTO": "goto", -4: "goto",
    "NFT_RETURN": "return", -5: "return",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Match:
    field: str  # iif oif saddr daddr l4proto dport unknown
    value: Any = None  # str name, ip_network, int
    negate: bool = False

    def test(self, probe: Mapping[str, Any]) -> bool:
        if self.field == "unknown" or self.field not in probe:
            return False
        got = probe[self.field]
        if self.field in ("saddr", "daddr"):
            hit = ipaddress.ip_address(got) in self.value
        else:
            hit = got == self.value
        return hit != self.negate


@dataclass(frozen=True, slots=True)
class FwRule:
    family: int
    table: str
    chain: str
    position: int  # 1-based, in the chain
    matches: tuple[Match, ...]
    verdict: str  # accept drop reject jump goto return continue
    target: str | None = None  # the chain of a jump/goto
    text: str = ""
    packets: int | None = None  # the rule's counter, when it has one

    def applies(self, probe: Mapping[str, Any]) -> bool:
        return all(m.test(probe) for m in self.matches)


@dataclass(frozen=True, slots=True)
class FwChain:
    family: int
    table: str
    name: str
    hook: int | None
    priority: int
    policy: str  # accept / drop (base chains)


@dataclass(frozen=True, slots=True)
class Ruleset:
    chains: tuple[FwChain, ...] = ()
    rules: tuple[FwRule, ...] = ()
    read_ok: bool = False
    problem: str | None = None
    _index: dict[tuple[int, str, str], tuple[FwRule, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def chain_rules(self, family: int, table: str, chain: str) -> tuple[FwRule, ...]:
        key = (family, table, chain)
        if key not in self._index:
            self._index[key] = tuple(r for r in self.rules if (r.family, r.table, r.chain) == key)
        return self._index[key]


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: str  # accept drop reject
    why: str  # "policy DROP of ip filter FORWARD" / "rule 1 of ip filter FORWARD: ... DROP"
    rule: FwRule | None = None


def _describe(family: int, table: str, chain: str) -> str:
    fam = {2: "ip", 1: "inet", 10: "ip6"}.get(family, str(family))
    return f"{fam} {table} {chain}"


def _rule_text(matches: list[Match], verdict: str, target: str | None) -> str:
    parts = []
    for m in matches:
        neg = "!" if m.negate else ""
        flag = {"iif": "-i", "oif": "-o", "saddr": "-s", "daddr": "-d", "l4proto": "-p"}.get(
            m.field, "--dport" if m.field == "dport" else "-m ?"
        )
        val = (
            {6: "tcp", 17: "udp", 1: "icmp"}.get(m.value, m.value)
            if m.field == "l4proto"
            else m.value
        )
        parts.append(f"{neg}{flag} {val}" if m.field != "unknown" else "-m (not evaluated)")
    act = target if verdict in ("jump", "goto") and target else verdict.upper()
    return " ".join([*parts, "->", str(act)])


def decode(family: int, table: str, chain: str, position: int, exprs: list[Any]) -> FwRule:
    reg: str | None = None
    mask: bytes | None = None
    matches: list[Match] = []
    verdict, target = "continue", None
    packets: int | None = None
    for e in exprs:
        name = e.get_attr("NFTA_EXPR_NAME") if hasattr(e, "get_attr") else e.get("name")
        data = nft_attrs(e.get_attr("NFTA_EXPR_DATA") if hasattr(e, "get_attr") else e.get("data"))
        if name == "meta":
            key = data.get("NFTA_META_KEY")
            reg = {
                "NFT_META_IIFNAME": "iif", 6: "iif", "NFT_META_OIFNAME": "oif", 7: "oif",
                "NFT_META_L4PROTO": "l4proto", 16: "l4proto",
            }.get(key, "unknown")  # fmt: skip
            mask = None
        elif name == "payload":
            base, off = data.get("NFTA_PAYLOAD_BASE"), data.get("NFTA_PAYLOAD_OFFSET")
            net = base in ("NFT_PAYLOAD_NETWORK_HEADER", 1)
            l4 = base in ("NFT_PAYLOAD_TRANSPORT_HEADER", 2)
            reg = (
                "saddr" if net and off == 12 else
                "daddr" if net and off == 16 else
                "l4proto" if net and off == 9 else
                "dport" if l4 and off == 2 else "unknown"
            )  # fmt: skip
            mask = None
        elif name == "bitwise":
            mask = nft_value(data, "NFTA_BITWISE_MASK")
        elif name == "cmp":
            val = nft_value(data, "NFTA_CMP_DATA")
            neg = data.get("NFTA_CMP_OP") in ("NFT_CMP_NEQ", 1)
            if reg is None or val is None or reg == "unknown":
                matches.append(Match("unknown"))
            elif reg in ("iif", "oif"):
                matches.append(Match(reg, val.rstrip(b"\x00").decode(errors="replace"), neg))
            elif reg == "l4proto":
                matches.append(Match(reg, val[0] if val else None, neg))
            elif reg == "dport":
                matches.append(Match(reg, int.from_bytes(val[:2], "big"), neg))
            else:
                full = int.from_bytes(val[:4].ljust(4, b"\x00"), "big")
                plen = 8 * len(val) if mask is None else bin(int.from_bytes(mask, "big")).count("1")
                try:
                    net4 = ipaddress.IPv4Network((full, plen), strict=False)
                    matches.append(Match(reg, net4, neg))
                except ValueError:
                    matches.append(Match("unknown"))
            reg, mask = None, None
        elif name == "immediate":
            idata = nft_attrs(data.get("NFTA_IMMEDIATE_DATA"))
            vd = nft_attrs(idata.get("NFTA_DATA_VERDICT"))
            if vd:
                verdict = _VERDICTS.get(vd.get("NFTA_VERDICT_CODE"), "continue")
                chain_to = vd.get("NFTA_VERDICT_CHAIN")
                target = str(chain_to) if chain_to else None
        elif name == "target":
            tname = str(data.get("NFTA_TARGET_NAME") or "")
            if tname == "REJECT":
                verdict = "reject"
            elif tname in ("DROP",):
                verdict = "drop"
            elif tname in ("ACCEPT",):
                verdict = "accept"
        elif name == "reject":
            verdict = "reject"
        elif name == "counter":
            got = data.get("NFTA_COUNTER_PACKETS")
            packets = int(got) if got is not None else None
        elif name in ("match", "lookup", "ct", "dynset", "rt", "fib", "socket", "xfrm", "limit"):
            matches.append(Match("unknown"))
    return FwRule(
        family, table, chain, position, tuple(matches), verdict, target,
        _rule_text(matches, verdict, target), packets,
    )  # fmt: skip


def read_ruleset(netns: str | None = None) -> Ruleset:
    """Every chain and rule of the IPv4/inet tables (read-only)."""
    try:
        from pyroute2.nftables.main import NFTables

        with in_netns(netns):
            nft = NFTables(nfgen_family=0)
        try:
            raw_chains = nft.get_chains()
            raw_rules = nft.get_rules()
        finally:
            nft.close()
    except Exception as exc:  # permission, no nf_tables: one line, the checks degrade
        return Ruleset(problem=f"cannot read the firewall rules ({exc or type(exc).__name__})")
    chains = []
    for c in raw_chains:
        fam = int(c.get("nfgen_family") or 0)
        if fam not in (1, 2):
            continue
        hook = nft_attrs(c.get_attr("NFTA_CHAIN_HOOK"))
        pol = c.get_attr("NFTA_CHAIN_POLICY")
        chains.append(
            FwChain(
                fam, str(c.get_attr("NFTA_CHAIN_TABLE")), str(c.get_attr("NFTA_CHAIN_NAME")),
                hook.get("NFTA_HOOK_HOOKNUM") if hook else None,
                int(hook.get("NFTA_HOOK_PRIORITY") or 0) if hook else 0,
                "drop" if pol in (0, "NF_DROP") else "accept",
            )
        )  # fmt: skip
    rules = []
    pos: dict[tuple[int, str, str], int] = {}
    for r in raw_rules:
        fam = int(r.get("nfgen_family") or 0)
        if fam not in (1, 2):
            continue
        key = (fam, str(r.get_attr("NFTA_RULE_TABLE")), str(r.get_attr("NFTA_RULE_CHAIN")))
        pos[key] = pos.get(key, 0) + 1
        rules.append(decode(*key, pos[key], r.get_attr("NFTA_RULE_EXPRESSIONS") or []))
    return Ruleset(tuple(chains), tuple(rules), read_ok=True)


def _walk(rs: Ruleset, fam: int, table: str, chain: str, probe: Mapping[str, Any], depth: int
          ) -> Outcome | None:  # fmt: skip
    """A final verdict inside ``chain`` (following jumps), or None to fall through/return."""
    if depth > 16:
        return None
    for rule in rs.chain_rules(fam, table, chain):
        if not rule.applies(probe):
            continue
        where = f"rule {rule.position} of {_describe(fam, table, chain)}: {rule.text}"
        if rule.verdict in ("accept", "drop", "reject"):
            return Outcome(rule.verdict, where, rule)
        if rule.verdict == "return":
            return None
        if rule.verdict in ("jump", "goto") and rule.target:
            got = _walk(rs, fam, table, rule.target, probe, depth + 1)
            if got is not None:
                return got
            if rule.verdict == "goto":
                return None
    return None


def verdict_at(rs: Ruleset, hook: str, probe: Mapping[str, Any]) -> Outcome:
    """The first final verdict for ``probe`` at ``hook`` ("input" or "forward")."""
    if not rs.read_ok:
        return Outcome("accept", "rules not readable")
    num = HOOKS[hook]
    base = sorted((c for c in rs.chains if c.hook == num), key=lambda c: c.priority)
    last = Outcome("accept", f"no {hook} chain drops it")
    for c in base:
        got = _walk(rs, c.family, c.table, c.name, probe, 0)
        if got is None:
            if c.policy == "drop":
                return Outcome("drop", f"policy DROP of {_describe(c.family, c.table, c.name)}")
            continue
        if got.verdict in ("drop", "reject"):
            return got
        last = got
    return last
