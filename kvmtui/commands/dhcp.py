"""``kvmtui dhcp VM``: wait for the VM's next DHCP exchange and name the server that answered.

Exit codes: 0 a complete exchange seen, 1 none (or an incomplete one) in the timeout, 2 bad
arguments (unknown VM).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

from kvmtui.capture.dhcp import (
    DhcpTransaction,
    check_lease,
    missing_words,
    server_words,
    transaction_json,
)
from kvmtui.commands.capture import _err, _events, _session


def dhcp_text(tx: DhcpTransaction) -> str:
    xid = f"DHCPv6 xid 0x{tx.xid:06x}" if tx.v6 else f"DHCP xid 0x{tx.xid:08x}"
    lines = [f"{xid} client {tx.client} ({tx.vm or 'unknown VM'}): {tx.outcome}"]
    t0 = tx.messages[0].time if tx.messages else 0.0
    for m in tx.messages:
        extra = {"offer": f" offers {m.yiaddr}", "ack": f" acks {m.yiaddr}",
                 "advertise": f" offers {m.yiaddr}", "reply": f" assigns {m.yiaddr}"}.get(
            m.type, "") if m.yiaddr else ""  # fmt: skip
        sid = f" server-id {m.server_id}" if m.server_id else ""
        lines.append(
            f"  +{(m.time - t0) * 1000:8.1f} ms  {m.type:<9} on {m.dev:<8} from {m.src_mac}"
            f"{extra}{sid}  (seen on {', '.join(m.seen_on)})"
        )
    if tx.offered_ip:
        lines.append(f"  address: {tx.offered_ip}")
    if tx.server is not None:
        s = tx.server
        lines.append(f"  {server_words(s)}")
    missing = missing_words(tx)
    if missing:
        lines.append(f"  {missing}")
    if tx.lease_check is not None:
        lines.append(f"  libvirt lease: {tx.lease_check.status}: {tx.lease_check.detail}")
    return "\n".join(lines)


def _resolve_key(args: argparse.Namespace) -> int:
    """Name the VM the one way every command does (kvmtui.core.resolve: short lab names too)."""
    from kvmtui.commands.capture import _read_host
    from kvmtui.core.resolve import UnknownVm, resolve

    try:
        r = resolve(_read_host(getattr(args, "connect", None)), str(args.vm))
    except UnknownVm as exc:
        _err(str(exc))
        return 2
    if r.nics:
        args.vm = r.nics[0].mac
        args.vm_name = r.vm.name
    return 0


def run_dhcp(args: argparse.Namespace) -> int:
    code = _resolve_key(args)
    if code:
        return code
    _err(
        "waiting for a complete DHCP exchange (Discover, Offer, Request, Ack); to trigger one "
        "restart the VM's DHCP client (in the lab: kvmtui lab lesson dhcp)"
    )
    sess, code = _session(args, "udp and (port 67 or port 68)")
    if sess is None:
        return code
    mac = sess.path.mac.lower()
    timeout = float(getattr(args, "timeout", 60.0) or 60.0)
    deadline = time.monotonic() + timeout
    done: DhcpTransaction | None = None
    latest: DhcpTransaction | None = None
    try:
        while done is None and time.monotonic() < deadline:
            time.sleep(0.1)
            batch = sess.poll()
            _events(batch, sys.stderr)
            for tx in batch.dhcp:
                if tx.client != mac:
                    continue
                latest = tx
                if tx.outcome in ("bound", "refused (Nak)", "declined"):
                    done = tx
        if done is not None:
            time.sleep(0.3)  # the Ack's other sightings
            for tx in sess.poll().dhcp:
                if (tx.xid, tx.client) == (done.xid, done.client):
                    done = tx
    finally:
        sess.stop()
    found = done or latest
    if found is None:
        _err(
            f"no DHCP exchange of {getattr(args, 'vm_name', args.vm)} seen in {timeout:g} s: "
            "the guest renews at half its lease time; restart its DHCP client (or the VM) to "
            "see one now (in the lab: kvmtui lab lesson dhcp)"
        )
        return 1
    tx = found
    if tx.acked:
        tx = replace(tx, lease_check=check_lease(tx, getattr(args, "connect", None)))
    if getattr(args, "json", False):
        print(json.dumps(transaction_json(tx)))
    else:
        print(dhcp_text(tx))
    return 0 if done is not None else 1
