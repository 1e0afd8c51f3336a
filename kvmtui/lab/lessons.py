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
import os
import signal
import subprocess
import sys
import time

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
        "capture", "br-light"),
    Lesson(
        "host-only", "1.2",
        {"en": "Host-only: VMs reach each other, not the Internet",
         "vi": "Host-only: các VM thấy nhau nhưng không ra được Internet"},
        {"en": "On an isolated network the VMs talk through a virtual switch only: a ping to "
               "the Internet fails, a ping to a VM on the same network works.",
         "vi": "Trong mạng cô lập, các VM chỉ nói chuyện qua switch ảo: ping ra Internet thất "
               "bại, ping tới VM cùng mạng thì thành công."},
        {"en": "iso-a pings 198.51.100.1 (no reply: virbr1 has no route out) and then iso-b "
               "(replies). The capture shows requests without replies, then request/reply pairs.",
         "vi": "iso-a ping 198.51.100.1 (không có trả lời: virbr1 không có đường ra ngoài) rồi "
               "ping iso-b (có trả lời). Bản bắt gói cho thấy yêu cầu không có trả lời, rồi các "
               "cặp yêu cầu/trả lời."},
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
        "capture", "nat-light"),
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
        {"en": "nat-light fetches a page from 198.51.100.1 (works); the Internet pings "
               "nat-light's address (fails), and pings br-light's LAN router (works).",
         "vi": "nat-light tải một trang từ 198.51.100.1 (được); Internet ping địa chỉ của "
               "nat-light (thất bại), còn ping router LAN của br-light thì được."},
        "path", "nat-light"),
    Lesson(
        "mac-learning", "4",
        {"en": "The bridge learns MACs and forwards to one port",
         "vi": "Bridge học địa chỉ MAC và chỉ chuyển tiếp tới một cổng"},
        {"en": "A bridge is a switch: it learns which port each MAC lives behind and forwards a "
               "frame only to that port; an unknown destination is flooded to every port.",
         "vi": "Bridge là một switch: nó học MAC nào nằm sau cổng nào và chỉ chuyển khung tới "
               "đúng cổng đó; đích chưa biết thì bị gửi tràn (flood) ra mọi cổng."},
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
        vm = le.vm or ""
        return f"{vm} pinged {inet}: {_word(_ping(prefix, vm, inet, 3))}"
    if le.name == "host-only":
        peer = _lease_ip(prefix, "iso-b") or "iso-b"
        out = _ping(prefix, "iso-a", inet)
        nb = _ping(prefix, "iso-a", peer)
        return f"iso-a pinged {inet}: {_word(out)}; pinged its neighbour iso-b {peer}: {_word(nb)}"
    if le.name == "dhcp":
        pid = _udhcpc_pid(prefix, "nat-light")
        if pid is None:
            return "nat-light's DHCP client (udhcpc) is not running"
        os.kill(pid, signal.SIGUSR2)  # release
        time.sleep(0.3)
        os.kill(pid, signal.SIGUSR1)  # renew from scratch: Discover, Offer, Request, Ack
        return f"nat-light's udhcpc (pid {pid}) released its lease and asked again (DORA)"
    if le.name == "no-bridge":
        got = _in(prefix, "nat-light", "busybox", "wget", "-q", "-O", "-", "-T", "3",
                  f"http://{inet}/").returncode == 0  # fmt: skip
        ip = _lease_ip(prefix, "nat-light") or "192.168.122.2"
        back = _ping(prefix, spec.NS_INET, ip)
        return (f"nat-light fetched http://{inet}/: {'ok' if got else 'failed'}; "
                f"the Internet pinged nat-light {ip}: {_word(back)}")  # fmt: skip
    # mac-learning
    b = spec.lab_vm("iso-b")
    peer = _lease_ip(prefix, "iso-b") or "iso-b"
    _ping(prefix, "iso-a", peer, 1)  # iso-a knows iso-b's MAC: the next frame is unicast
    _in(prefix, spec.NS_HOST, "bridge", "fdb", "del", b.mac, "dev", b.tap or "", "master")
    ok = _in(prefix, "iso-a", "busybox", "ping", "-c", "4", "-i", "0.3", "-W", "1", peer)
    return (f"deleted {b.mac} from {spec.ISO_BRIDGE}'s FDB, then iso-a pinged iso-b {peer} "
            f"4 times: {_word(ok.returncode == 0)}")  # fmt: skip


def _evidence_cmd(prefix: str, le: Lesson) -> list[str] | None:
    base = ["ip", "netns", "exec", spec.ns_name(prefix, spec.NS_HOST), sys.executable, "-m",
            "kvmtui"]  # fmt: skip
    uri = ["-c", spec.libvirt_uri(prefix)]
    if le.view == "capture" and le.vm:
        return [
            *base,
            "trace",
            f"{prefix}{le.vm}",
            *uri,
            "-n",
            "4",
            "--timeout",
            "15",
            "--filter",
            "icmp",
        ]
    if le.view == "dhcp" and le.vm:
        return [*base, "dhcp", f"{prefix}{le.vm}", *uri, "--timeout", "20"]
    if le.view == "switch" and le.bridge:
        return [*base, "switch", le.bridge, *uri, "-n", "8", "--timeout", "15"]
    return None


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
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, stdin=subprocess.DEVNULL)  # fmt: skip
        time.sleep(1.5)  # the capture opens its sockets before the experiment starts
    print(f"did: {trigger(prefix, le.name)}")
    if proc is not None:
        try:
            out, _ = proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        print("observed (" + " ".join(cmd[7:9] if cmd else []) + "):")
        for line in out.splitlines():
            print(f"  {line}")
    print(f"  {le.explain[lang]}")
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return 0
