"""The seed's experiments as lessons (``kvmtui lab lesson [NAME] [--lang vi]``, the TUI's ``L``).

Each lesson has the seed's claim, what to look at, in English and Vietnamese
(:class:`kvmtui.lab.lessonmodel.Lesson`). :func:`trigger` runs the experiment in the lab and
returns one line of what it did (the TUI calls it from a worker); :func:`run_lesson` also runs
the headless command that shows the evidence (``trace``, ``dhcp``, ``switch``) while the
experiment runs, and prints what it observed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from kvmtui.lab import spec
from kvmtui.lab.lessonmodel import Lesson
from kvmtui.lab.procs import netns_inode, pids_in_netns

LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "bridged", "1.1",
        {"en": "Bridged: the VM is one more machine on the LAN",
         "vi": "Bridged: VM là một máy nữa trong mạng LAN"},
        {"en": "A bridged VM's frame goes tap -> bridge -> physical NIC (ens9) with no NAT: its "
               "source IP stays the LAN address it got from the LAN's DHCP.",
         "vi": "Gói tin của VM ở chế độ bridge đi tap -> bridge -> card mạng vật lý (ens9) mà "
               "không qua NAT: IP nguồn vẫn là địa chỉ LAN do DHCP của LAN cấp."},
        {"en": "br-light pings the Internet: the capture shows the same source IP (10.0.0.x) on "
               "the tap, on br0 and on ens9; the LAN router does the NAT, not the host.",
         "vi": "br-light ping ra Internet: bản bắt gói cho thấy cùng một IP nguồn (10.0.0.x) trên "
               "tap, trên br0 và trên ens9; router LAN làm NAT, không phải máy host."},
        "capture", "br-light", bpf=f"icmp and host {spec.INTERNET_IP}"),
    Lesson(
        "host-only", "1.2",
        {"en": "Host-only: VMs reach each other, not the Internet",
         "vi": "Host-only: các VM thấy nhau nhưng không ra được Internet"},
        {"en": "On an isolated network the VMs talk through a virtual switch only: a ping to "
               "the Internet fails, a ping to a VM on the same network works.",
         "vi": "Trong mạng cô lập, các VM chỉ nói chuyện qua switch ảo: ping ra Internet thất "
               "bại, ping tới VM cùng mạng thì thành công."},
        {"en": "iso-a pings 198.51.100.1: it fails at once, 'Network is unreachable': the "
               "isolated network's DHCP gives no router, so the VM has no way out at all (a frame "
               "sent anyway ends at virbr1). Then it pings iso-b: the capture shows request/reply "
               "pairs through virbr1 and nowhere else.",
         "vi": "iso-a ping 198.51.100.1: thất bại ngay, 'Network is unreachable': DHCP của mạng "
               "cô lập không cấp router, nên VM hoàn toàn không có đường ra (một khung cố gửi đi "
               "cũng dừng ở virbr1). Rồi nó ping iso-b: bản bắt gói cho thấy các cặp yêu cầu/trả "
               "lời chỉ đi qua virbr1."},
        "capture", "iso-a"),
    Lesson(
        "nat", "1.3",
        {"en": "NAT: libvirt's virtual router translates the VM's address",
         "vi": "NAT: router ảo của libvirt dịch địa chỉ của VM"},
        {"en": "libvirt's NAT network is a virtual router: virbr0 is the VMs' gateway and the "
               "host's address stands for them outside (MASQUERADE on the uplink).",
         "vi": "Mạng NAT của libvirt là một router ảo: virbr0 là gateway của các VM và địa chỉ "
               "của host đại diện cho chúng ở bên ngoài (MASQUERADE trên card uplink)."},
        {"en": "nat-light pings the Internet: on the tap the source is 192.168.122.x, on wan0 it "
               "is the host's 198.51.100.2: the translation row shows both.",
         "vi": "nat-light ping ra Internet: trên tap IP nguồn là 192.168.122.x, trên wan0 là "
               "198.51.100.2 của host: dòng dịch địa chỉ cho thấy cả hai."},
        "capture", "nat-light", bpf=f"icmp and host {spec.INTERNET_IP}"),
    Lesson(
        "dhcp", "2",
        {"en": "Who gives the VM its DHCP lease?", "vi": "Ai cấp DHCP cho VM?"},
        {"en": "DHCP is four messages (Discover, Offer, Request, Ack); the Ack comes from "
               "virbr0's own MAC: the NAT VM's DHCP server is libvirt's dnsmasq, the virtual "
               "router.",
         "vi": "DHCP gồm bốn bản tin (Discover, Offer, Request, Ack); bản Ack đến từ chính MAC "
               "của virbr0: máy chủ DHCP của VM NAT là dnsmasq của libvirt, tức router ảo."},
        {"en": "nat-light's DHCP client releases and asks again: the DHCP view lists the four "
               "messages in time order and names the server by its MAC.",
         "vi": "Trình DHCP của nat-light trả địa chỉ rồi xin lại: màn hình DHCP liệt kê bốn bản "
               "tin theo thứ tự thời gian và gọi tên máy chủ theo MAC của nó."},
        "dhcp", "nat-light"),
    Lesson(
        "no-bridge", "3",
        {"en": "Without a bridge: out through NAT, unreachable from outside",
         "vi": "Không có bridge: ra ngoài qua NAT, bên ngoài không vào được"},
        {"en": "Without a bridge the hypervisor's default is NAT: the VM reaches out through the "
               "host's IP, but outside hosts cannot reach the VM. A bridge makes it a LAN host.",
         "vi": "Không có bridge thì mặc định là NAT: VM ra ngoài qua IP của host, nhưng máy bên "
               "ngoài không vào được VM. Bridge biến VM thành một máy trong LAN."},
        {"en": "nat-light fetches a page from 198.51.100.1 (works: the capture shows its "
               "source become the host's 198.51.100.2); the Internet, even with a route through "
               "the host, pings nat-light (no reply: libvirt's firewall rejects it and its rule "
               "counts the packets); the LAN's router pings br-light directly (replies: no NAT, "
               "no port forwarding).",
         "vi": "nat-light tải một trang từ 198.51.100.1 (được: bản bắt gói cho thấy IP nguồn "
               "thành 198.51.100.2 của host); Internet, dù có đường đi qua host, ping nat-light "
               "(không có trả lời: tường lửa của libvirt từ chối và luật đó đếm các gói); router "
               "của LAN ping thẳng br-light (có trả lời: không NAT, không chuyển tiếp cổng)."},
        "path", "nat-light", bpf=f"tcp and host {spec.INTERNET_IP}"),
    Lesson(
        "mac-learning", "4",
        {"en": "The bridge learns MACs and forwards to one port",
         "vi": "Bridge học địa chỉ MAC và chỉ chuyển tiếp tới một cổng"},
        {"en": "A bridge is a switch: it learns which port each MAC lives behind and forwards a "
               "frame only to that port; an unknown destination is flooded to every other port.",
         "vi": "Bridge là một switch: nó học MAC nào nằm sau cổng nào và chỉ chuyển khung tới "
               "đúng cổng đó; đích chưa biết thì bị gửi tràn (flood) ra mọi cổng khác."},
        {"en": "iso-b's entry is deleted from virbr1's FDB, then iso-a pings iso-b: the first "
               "frame floods, iso-b's reply teaches the bridge (learned), later frames forward "
               "to vnet3 only.",
         "vi": "Mục của iso-b bị xoá khỏi bảng FDB của virbr1, rồi iso-a ping iso-b: khung đầu "
               "tiên bị flood, câu trả lời của iso-b dạy cho bridge (learned), các khung sau chỉ "
               "đi tới vnet3."},
        "switch", "iso-a", spec.ISO_BRIDGE),
)  # fmt: skip


class LessonError(Exception):
    """Unknown lesson or no lab: one line for the user."""


def lesson(name: str) -> Lesson:
    for le in LESSONS:
        if le.name == name:
            return le
    names = ", ".join(le.name for le in LESSONS)
    raise LessonError(f"no lesson {name[:40]!r} (lessons: {names})")


def _require_lab(prefix: str) -> None:
    if netns_inode(spec.ns_name(prefix, spec.NS_HOST)) is None:
        raise LessonError(
            f"lessons run in the lab only, and lab {prefix} is not up "
            f"(kvmtui lab --prefix {prefix} up)"
        )


def _in(
    prefix: str, who: str, *cmd: str, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", spec.ns_name(prefix, who), *cmd], capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _lease_ip(prefix: str, vm: str) -> str | None:
    try:
        with open(os.path.join(spec.state_dir(prefix), "vms", vm, "lease")) as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def _ping(prefix: str, who: str, ip: str, n: int = 2) -> bool:
    return _in(prefix, who, "busybox", "ping", "-c", str(n), "-W", "1", ip).returncode == 0


def _word(ok: bool) -> str:
    return "replies" if ok else "no reply"


def _udhcpc_pid(prefix: str, vm: str) -> int | None:
    inode = netns_inode(spec.ns_name(prefix, vm))
    for pid in pids_in_netns(inode) if inode is not None else []:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"udhcpc") for a in argv[:2]):
            return pid
    return None


def trigger(prefix: str, name: str) -> str:
    """Run lesson ``name``'s experiment in lab ``prefix``; one line of what it did."""
    le = lesson(name)
    _require_lab(prefix)
    inet = spec.INTERNET_IP
    if le.name in ("bridged", "nat"):
        return _ping_out(prefix, le.vm or "", spec.LAN_SUBNET if le.name == "bridged" else
                         spec.NAT_SUBNET)  # fmt: skip
    if le.name == "host-only":
        peer = _lease_ip(prefix, "iso-b") or "iso-b"
        cp = _in(prefix, "iso-a", "busybox", "ping", "-c", "2", "-W", "1", inet)
        why = (cp.stderr.strip().splitlines() or [""])[-1].removeprefix("ping: ")
        nb = _ping(prefix, "iso-a", peer)
        return (f"iso-a pinged {inet}: {_word(cp.returncode == 0)}{f' ({why})' if why else ''}; "
                f"pinged its neighbour iso-b {peer}: {_word(nb)}")  # fmt: skip
    if le.name == "dhcp":
        pid = _udhcpc_pid(prefix, "nat-light")
        if pid is None:
            return "nat-light's DHCP client (udhcpc) is not running"
        os.kill(pid, signal.SIGUSR2)  # release
        time.sleep(0.3)
        os.kill(pid, signal.SIGUSR1)  # renew from scratch: Discover, Offer, Request, Ack
        return f"nat-light's udhcpc (pid {pid}) released its lease and asked again (DORA)"
    if le.name == "no-bridge":
        return _no_bridge(prefix)
    # mac-learning
    b = spec.lab_vm("iso-b")
    peer = _lease_ip(prefix, "iso-b") or "iso-b"
    _ping(prefix, "iso-a", peer, 1)  # iso-a knows iso-b's MAC: the next frame is unicast
    _in(prefix, spec.NS_HOST, "bridge", "fdb", "del", b.mac, "dev", b.tap or "", "master")
    ok = _in(prefix, "iso-a", "busybox", "ping", "-c", "4", "-i", "0.3", "-W", "1", peer)
    return (f"deleted {b.mac} from {spec.ISO_BRIDGE}'s FDB, then iso-a pinged iso-b {peer} "
            f"4 times: {_word(ok.returncode == 0)}")  # fmt: skip


def _ping_out(prefix: str, vm: str, subnet: str) -> str:
    """``vm`` pings the Internet; which of the host's source-NAT rules covers ``subnet`` (the
    VM's range), with how many new connections its counter took meanwhile, or that none does."""
    from dataclasses import replace

    from kvmtui.core.firewall import read_firewall

    host = spec.ns_name(prefix, spec.NS_HOST)

    def rule() -> tuple[bool | None, str, int | None]:
        fw = read_firewall(host)
        covered, text = fw.nat_for(subnet)
        hits = [r for r in fw.nat_rules if r.covers(subnet)]
        best = next((r for r in hits if r.l4proto is None), hits[0] if hits else None)
        if best is None:  # none, or the rules could not be read: nat_for says which
            return covered, text, None
        return True, replace(best, packets=None).describe(), best.packets

    _, _, before = rule()
    ok = _ping(prefix, vm, spec.INTERNET_IP, 3)
    covered, text, after = rule()
    line = f"{vm} pinged {spec.INTERNET_IP}: {_word(ok)}; "
    if covered is None:
        return line + text
    if not covered:
        return line + f"the host has {text}: it does not translate {vm}'s address"
    n = after - before if after is not None and before is not None else None
    took = f" (+{n} new connection{'' if n == 1 else 's'} translated meanwhile)" if n else ""
    return line + f"the host's rule: {text}{took}"


def _no_bridge(prefix: str) -> str:
    inet = spec.INTERNET_IP
    try:  # busybox 1.35's wget -T crashes (SIGSEGV): the subprocess's own timeout bounds it
        got = _in(prefix, "nat-light", "busybox", "wget", "-q", "-O", "/dev/null",
                  f"http://{inet}/", timeout=10).returncode == 0  # fmt: skip
    except subprocess.TimeoutExpired:
        got = False
    ip = _lease_ip(prefix, "nat-light") or "192.168.122.2"
    inward, why = _ping_inward(prefix, ip)
    br = _lease_ip(prefix, "br-light")
    lan = _ping(prefix, spec.NS_LAN, br) if br else False
    return (f"nat-light fetched http://{inet}/: {'ok' if got else 'failed'}; "
            f"the Internet pinged nat-light {ip} through the host {spec.UPLINK_IP}: "
            f"{_word(inward)}{why}; the LAN's router {spec.LAN_ROUTER_IP} pinged br-light "
            f"{br or '(no lease)'}: {_word(lan)}")  # fmt: skip


def _ping_inward(prefix: str, ip: str) -> tuple[bool, str]:
    """The Internet pings the NAT VM ``ip`` as if it knew the way (a route to the NAT range via
    the host, for the ping only; the real Internet has none: the range is private), so what stops
    it is the host itself. Returns (replied, the host's firewall rule that turned it away and how
    many packets its counter took meanwhile)."""
    from kvmtui.doctor.fwsim import FwRule, read_ruleset, verdict_at

    host = spec.ns_name(prefix, spec.NS_HOST)
    probe = {"iif": spec.UPLINK, "oif": spec.NAT_BRIDGE, "saddr": spec.INTERNET_IP,
             "daddr": ip, "l4proto": 1}  # fmt: skip

    def counted(rule: FwRule) -> int | None:
        rs = read_ruleset(host)
        key = (rule.family, rule.table, rule.chain, rule.position)
        got = next((r for r in rs.rules if (r.family, r.table, r.chain, r.position) == key), None)
        return got.packets if got is not None else None

    before = verdict_at(read_ruleset(host), "forward", probe)
    route = (spec.NAT_SUBNET, "via", spec.UPLINK_IP)
    added = _in(prefix, spec.NS_INET, "ip", "route", "add", *route).returncode == 0
    try:
        ok = _ping(prefix, spec.NS_INET, ip)
    finally:
        if added:
            _in(prefix, spec.NS_INET, "ip", "route", "del", *route)
    rule = before.rule
    if rule is None or before.verdict not in ("drop", "reject"):
        return ok, ""
    after = counted(rule)
    n = after - rule.packets if after is not None and rule.packets is not None else None
    if n == 0:
        return ok, f" (it never reached the host's firewall: {before.why} counted nothing)"
    took = f", {n} packets counted" if n is not None else ""
    return ok, f" (the host's firewall turned it away: {before.why}{took})"


def _evidence_cmd(prefix: str, le: Lesson) -> list[str] | None:
    base = ["ip", "netns", "exec", spec.ns_name(prefix, spec.NS_HOST), sys.executable, "-m",
            "kvmtui"]  # fmt: skip
    uri = ["-c", spec.libvirt_uri(prefix)]
    if le.view in ("capture", "path") and le.vm:
        return [*base, "trace", f"{prefix}{le.vm}", *uri, "-n", "4", "--timeout", "15",
                "--filter", le.bpf, "--json"]  # fmt: skip
    if le.view == "dhcp" and le.vm:
        return [*base, "dhcp", f"{prefix}{le.vm}", *uri, "--timeout", "20"]
    if le.view == "switch" and le.bridge:
        return [*base, "switch", le.bridge, *uri, "-n", "12", "--timeout", "15"]
    return None


def trace_line(row: dict[str, Any]) -> str:
    """One ``trace --json`` row in the lesson's words: where it was seen and what changed."""
    hops = [h for h in row.get("hops") or [] if isinstance(h, dict)]
    out = row.get("direction") == "out"
    head = f"{row.get('direction', ''):<3} {row.get('summary', '')}  seen on "
    head += " > ".join(str(h.get("dev")) for h in hops)
    nat = row.get("nat")
    if isinstance(nat, dict):
        agrees = nat.get("conntrack")
        ct = (
            "; conntrack agrees"
            if agrees is True
            else "; conntrack disagrees"
            if agrees is False
            else ""
        )
        what = "the host's address stands for the VM" if out else "the reply translated back"
        return f"{head}: NAT {nat.get('from')} -> {nat.get('to')}: {what}{ct}"
    if row.get("stopped"):
        return f"{head}: {row['stopped']}"
    up = next((h for h in hops if h.get("role") == "uplink"), None)
    if up is not None:
        side, addr = ("source", row.get("src")) if out else ("destination", row.get("dst"))
        return f"{head}: {side} {addr} unchanged on {up.get('dev')} (no NAT)"
    return head


def _observed(out: str, err: str) -> list[str]:
    """The evidence command's output: JSON rows (trace) in words, its other lines as they are,
    the command's own notes (stderr) around them."""
    notes = err.splitlines()
    lines = notes[:1]
    for line in out.splitlines():
        try:
            row = json.loads(line) if line.startswith("{") else None
        except ValueError:
            row = None
        lines.append(trace_line(row) if isinstance(row, dict) else line)
    return lines + notes[1:]


def run_lesson(prefix: str, args: argparse.Namespace) -> int:
    lang = getattr(args, "lang", None) or "en"
    name = getattr(args, "name", None)
    try:
        if not name:
            for le in LESSONS:
                print(f"{le.name:<13} {le.seed_section:<4} {le.title[lang]}")
            return 0
        le = lesson(str(name))
        _require_lab(prefix)
    except LessonError as exc:
        print(f"kvmtui lab: {exc}", file=sys.stderr)
        return 2
    print(f"{le.title[lang]} (seed {le.seed_section})")
    print(f"  {le.claim[lang]}")
    cmd = _evidence_cmd(prefix, le)
    proc = None
    if cmd is not None:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, stdin=subprocess.DEVNULL)  # fmt: skip
        time.sleep(1.5)  # the capture opens its sockets before the experiment starts
    print(f"did: {trigger(prefix, le.name)}")
    if proc is not None:
        try:
            out, err = proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        print("observed (" + " ".join(cmd[7:9] if cmd else []) + "):")
        for line in _observed(out, err):
            print(f"  {line}")
    print(f"  {le.explain[lang]}")
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return 0
