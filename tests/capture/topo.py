"""A small KVM-host-like topology in namespaces of our own (prefix ``kvE-`` by default).

Built with ``ip``/``nft`` (tests may; the product may not). It mirrors the seed's three cases
without libvirt, so the capture engine can be tested before / without the lab:

    {p}h   the host: virbr0 192.168.122.1/24 (NAT: nft MASQUERADE out of wan0), virbr1
           192.168.100.1/24 (isolated), br0 10.0.0.2/24 with ens9 (peer in {p}l), wan0
           198.51.100.2/24 (peer in {p}i), default route via 198.51.100.1, ip_forward 1
    {p}i   the "Internet": eth0 198.51.100.1/24
    {p}l   the LAN: eth0 10.0.0.1/24, MAC 02:00:0a:00:00:01 (router and DHCP server)
    {p}vn  NAT VM:      eth0 52:54:00:ee:00:01 192.168.122.50, tap vnet0 on virbr0
    {p}vb  bridged VM:  eth0 52:54:00:ee:00:02 10.0.0.50, tap vnet1 on br0
    {p}vi  isolated VM: eth0 52:54:00:ee:00:03 192.168.100.50, tap vnet2 on virbr1
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from kvmtui.core.model import Hop, NicPath

INET_IP = "198.51.100.1"
UPLINK_IP = "198.51.100.2"
LAN_MAC = "02:00:0a:00:00:01"
VIRBR0_MAC = "02:00:c0:a8:7a:01"


@dataclass(frozen=True)
class TVm:
    name: str
    mac: str
    ip: str
    gw: str
    tap: str
    bridge: str

    @property
    def tap_mac(self) -> str:
        return "fe" + self.mac[2:]


NAT_VM = TVm("vn", "52:54:00:ee:00:01", "192.168.122.50", "192.168.122.1", "vnet0", "virbr0")
BR_VM = TVm("vb", "52:54:00:ee:00:02", "10.0.0.50", "10.0.0.1", "vnet1", "br0")
ISO_VM = TVm("vi", "52:54:00:ee:00:03", "192.168.100.50", "192.168.100.1", "vnet2", "virbr1")
VMS = (NAT_VM, BR_VM, ISO_VM)


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def nsx(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *cmd, check=check)


class Topo:
    def __init__(self, prefix: str = "kvE-") -> None:
        self.p = prefix
        self.host = prefix + "h"
        self.inet = prefix + "i"
        self.lan = prefix + "l"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.dir = f"/tmp/{prefix}topo"

    def ns(self, vm: TVm) -> str:
        return self.p + vm.name

    def namespaces(self) -> list[str]:
        return [self.host, self.inet, self.lan] + [self.ns(v) for v in VMS]

    def down(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.procs.clear()
        for ns in self.namespaces():
            # anything still running in our namespaces (udhcpc, dnsmasq) goes with them
            r = sh("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            sh("ip", "netns", "del", ns, check=False)

    def up(self) -> Topo:
        self.down()
        os.makedirs(self.dir, exist_ok=True)
        for ns in self.namespaces():
            sh("ip", "netns", "add", ns)
            nsx(ns, "ip", "link", "set", "lo", "up")
        h = self.host
        nsx(h, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # bridges
        for br, addr, mac in (
            ("virbr0", "192.168.122.1/24", VIRBR0_MAC),
            ("virbr1", "192.168.100.1/24", None),
            ("br0", "10.0.0.2/24", None),
        ):
            nsx(
                h, "ip", "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"
            )
            if mac:
                nsx(h, "ip", "link", "set", br, "address", mac)
            nsx(h, "ip", "addr", "add", addr, "dev", br)
            nsx(h, "ip", "link", "set", br, "up")
        # uplink and the Internet
        nsx(
            h,
            "ip",
            "link",
            "add",
            "wan0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.inet,
        )
        nsx(h, "ip", "addr", "add", UPLINK_IP + "/24", "dev", "wan0")
        nsx(h, "ip", "link", "set", "wan0", "up")
        nsx(self.inet, "ip", "addr", "add", INET_IP + "/24", "dev", "eth0")
        nsx(self.inet, "ip", "link", "set", "eth0", "up")
        nsx(h, "ip", "route", "add", "default", "via", INET_IP)
        # the LAN behind ens9
        nsx(
            h,
            "ip",
            "link",
            "add",
            "ens9",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.lan,
        )
        nsx(h, "ip", "link", "set", "ens9", "master", "br0", "up")
        nsx(self.lan, "ip", "link", "set", "eth0", "address", LAN_MAC)
        nsx(self.lan, "ip", "addr", "add", "10.0.0.1/24", "dev", "eth0")
        nsx(self.lan, "ip", "link", "set", "eth0", "up")
        # MASQUERADE, as libvirt does for a NAT network
        nsx(h, "nft", "add table ip kvE_nat")
        nsx(h, "nft", "add chain ip kvE_nat post { type nat hook postrouting priority 100; }")
        nsx(h, "nft", "add rule ip kvE_nat post ip saddr 192.168.122.0/24 "
            'ip daddr != 192.168.122.0/24 oifname "wan0" masquerade')  # fmt: skip
        # an isolated network: libvirt rejects forwarding to and from its bridge
        nsx(h, "nft", "add table ip kvE_filter")
        nsx(h, "nft", "add chain ip kvE_filter fw { type filter hook forward priority 0; }")
        nsx(h, "nft", 'add rule ip kvE_filter fw iifname "virbr1" reject')
        nsx(h, "nft", 'add rule ip kvE_filter fw oifname "virbr1" reject')
        for vm in VMS:
            self.plug(vm)
        return self

    def plug(self, vm: TVm, tap: str | None = None) -> None:
        """(Re)create the VM's NIC: the tap end on its bridge, the guest end in its namespace."""
        tap = tap or vm.tap
        ns = self.ns(vm)
        nsx(
            self.host, "ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns
        )
        nsx(self.host, "ip", "link", "set", tap, "address", vm.tap_mac)
        nsx(self.host, "ip", "link", "set", tap, "master", vm.bridge, "up")
        nsx(ns, "ip", "link", "set", "eth0", "address", vm.mac)
        nsx(ns, "ip", "addr", "add", vm.ip + "/24", "dev", "eth0")
        nsx(ns, "ip", "link", "set", "eth0", "up")
        nsx(ns, "ip", "route", "add", "default", "via", vm.gw)

    def unplug(self, vm: TVm, tap: str | None = None) -> None:
        nsx(self.host, "ip", "link", "del", tap or vm.tap)

    def ping(self, vm: TVm, dst: str, count: int = 3, interval: float = 0.2) -> str:
        r = nsx(self.ns(vm), "busybox", "ping", "-c", str(count), "-i", str(interval), "-W", "2",
                dst, check=False)  # fmt: skip
        return r.stdout

    def dnsmasq(self, ns: str, iface: str, rng: tuple[str, str], router: str) -> None:
        tag = f"{ns}-{iface}"
        if tag in self.servers and self.servers[tag].poll() is None:
            return
        p = self.servers[tag] = subprocess.Popen(
            ["ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
             f"--interface={iface}", "--bind-interfaces", "--except-interface=lo",
             f"--dhcp-range={rng[0]},{rng[1]},255.255.255.0,1h", f"--dhcp-option=3,{router}",
             f"--dhcp-leasefile={self.dir}/{tag}.leases", f"--pid-file={self.dir}/{tag}.pid",
             "--port=0", "--no-ping", "--log-dhcp", f"--log-facility={self.dir}/{tag}.log"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.procs.append(p)
        time.sleep(0.3)

    def udhcpc(self, vm: TVm, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        """One DHCP exchange from the VM (busybox udhcpc, no script effects: -s /bin/true)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns(vm), "busybox", "udhcpc", "-i", "eth0", "-n", "-q",
             "-f", "-t", "5", "-T", "2", "-s", "/bin/true"],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def nat_path(tap: str = "vnet0") -> NicPath:
    return NicPath(
        "vn", NAT_VM.mac, "nat",
        (Hop(tap, "tap"), Hop("virbr0", "bridge"), Hop(None, "nat"), Hop("wan0", "uplink")),
        True, "leaves through wan0, source NATed to 198.51.100.2 (MASQUERADE)",
    )  # fmt: skip


def br_path() -> NicPath:
    return NicPath(
        "vb", BR_VM.mac, "bridge",
        (Hop("vnet1", "tap"), Hop("br0", "bridge"), Hop("ens9", "uplink"), Hop(None, "lan")),
        True, "leaves through ens9 unchanged: no NAT",
    )  # fmt: skip


def iso_path() -> NicPath:
    return NicPath(
        "vi", ISO_VM.mac, "isolated",
        (Hop("vnet2", "tap"), Hop("virbr1", "bridge"), Hop(None, "end")),
        False, "no way out: isolated network (no <forward>)",
    )  # fmt: skip
