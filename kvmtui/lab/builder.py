"""``lab up`` and ``lab down``: build the seed's networks in namespaces, and remove exactly them.

``up`` is a list of idempotent steps, each of which checks what is there and makes only what is
missing, so a second run is quick and a run after a crash repairs the lab. What it makes:

- namespaces ``{p}inet``, ``{p}host``, ``{p}lan`` and one per light VM, recorded in the lab
  folder's marker (``owner.json``) before they are created;
- veths: inet eth0 <-> host wan0, inet eth1 <-> lan wan0, host ens9 (in br0) <-> lan eth0,
  and per light VM host vnetN (in its bridge) <-> VM eth0;
- processes, each recorded by PID in ``pids/``: busybox httpd (inet), the LAN's dnsmasq,
  libvirtd (host, private mount namespace), each light VM's loop (udhcpc + pings);
- through libvirtd: networks default/hostonly/bridged (libvirt starts their dnsmasqs and
  firewall rules inside the host namespace) and the QEMU guests.

``down`` undoes it in reverse order: guests and networks through libvirt when it answers, the
recorded processes, whatever still runs in the lab's namespaces, the namespaces, the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator

from kvmtui.lab import initramfs, libvirtd, spec, sshd
from kvmtui.lab.probe import Owner, console_path, light_vm_ip, qemu_vm_ip
from kvmtui.lab.procs import (
    LabError,
    PidRecords,
    kill_pids,
    netns_inode,
    ok,
    pids_in_netns,
    run,
    spawn,
)

BUSYBOX = "/bin/busybox"
LAB_ROOT = "/var/lib/kvmtui-lab"

# tool -> Debian package that provides it
REQUIRED = {
    "ip": "iproute2",
    "nft": "nftables",
    "iptables": "iptables",
    "libvirtd": "libvirt-daemon-system",
    "dnsmasq": "dnsmasq-base",
    "busybox": "busybox-static",
    "unshare": "util-linux",
    "mount": "mount",
    "sysctl": "procps",
}


def qemu_available() -> bool:
    return shutil.which("qemu-system-x86_64") is not None and initramfs.kernel() is not None


def kvm_usable() -> bool:
    """KVM only where it really works, else TCG. A host that is itself a PVM guest exposes
    /dev/kvm through ``kvm_pvm``, which cannot boot a stock guest kernel (LAB-NOTES), so KVM
    needs ``kvm_intel``/``kvm_amd`` and no ``kvm_pvm``. KVMTUI_LAB_KVM=1/0 forces the choice."""
    forced = os.environ.get("KVMTUI_LAB_KVM")
    if forced in ("0", "1"):
        return forced == "1" and os.path.exists("/dev/kvm")
    if not os.path.exists("/dev/kvm") or os.path.exists("/sys/module/kvm_pvm"):
        return False
    return os.path.exists("/sys/module/kvm_intel") or os.path.exists("/sys/module/kvm_amd")


class Progress:
    def __init__(self, prefix: str, quiet: bool) -> None:
        self.prefix = prefix
        self.quiet = quiet
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.t0:5.1f}s] lab {self.prefix}: {msg}", flush=True)


class Lab:
    """One lab, identified by its prefix."""

    def __init__(self, prefix: str) -> None:
        if not prefix or "/" in prefix or len(prefix) > 40:
            raise LabError(f"invalid prefix {prefix!r}")
        self.prefix = prefix
        self.state = spec.state_dir(prefix)
        self.uri = spec.libvirt_uri(prefix)
        self.inet = spec.ns_name(prefix, spec.NS_INET)
        self.host = spec.ns_name(prefix, spec.NS_HOST)
        self.lan = spec.ns_name(prefix, spec.NS_LAN)
        self.pids = PidRecords(os.path.join(self.state, "pids"))

    # -- names and ownership -------------------------------------------------------------

    def all_namespaces(self) -> list[str]:
        return [self.inet, self.host, self.lan] + [
            spec.ns_name(self.prefix, vm.name) for vm in spec.LIGHT_VMS
        ]

    def path(self, *parts: str) -> str:
        return os.path.join(self.state, *parts)

    def check_ownership(self) -> Owner | None:
        """The lab's marker, or None when there is no lab folder; LabError when a name is taken."""
        owner = None
        if os.path.lexists(self.state):
            owner = Owner.load(self.state)
            if owner is None or owner.prefix != self.prefix:
                raise LabError(
                    f"folder {self.state} exists but is not this lab's (no kvmtui marker): "
                    "remove it or use another --prefix"
                )
        for ns in self.all_namespaces():
            inode = netns_inode(ns)
            if inode is None:
                continue
            if owner is None or not owner.owns(ns, inode):
                raise LabError(
                    f"network namespace {ns} exists and was not made by this lab: "
                    "remove it (ip netns del) or use another --prefix"
                )
        return owner

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise up/down of the same lab (a lock on the lab folder itself)."""
        fd = os.open(self.state, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- up ------------------------------------------------------------------------------

    def preflight(self, want_qemu: bool) -> None:
        if os.geteuid() != 0:
            raise LabError(
                "the lab needs root (namespaces, bridges, libvirtd): run it with sudo or as root"
            )
        missing = sorted({pkg for tool, pkg in REQUIRED.items() if shutil.which(tool) is None})
        if not os.path.exists(BUSYBOX):
            missing.append("busybox-static")
        if want_qemu and initramfs.kernel() is None:
            missing.append("linux-image-amd64")
        if missing:
            raise LabError("missing packages: apt-get install " + " ".join(sorted(set(missing))))
        self.check_ownership()

    def up(self, want_qemu: bool, quiet: bool = False, timeout: float = 150.0) -> None:
        say = Progress(self.prefix, quiet)
        qemu = want_qemu and qemu_available()
        self.preflight(want_qemu and qemu)
        if want_qemu and not qemu:
            say(
                "no QEMU guests: qemu-system-x86_64 or /boot/vmlinuz-* is missing "
                "(apt-get install qemu-system-x86 linux-image-amd64)"
            )
        fresh = not os.path.exists(self.state)
        os.makedirs(os.path.dirname(self.state), exist_ok=True)
        os.makedirs(self.state, exist_ok=True)
        owner = Owner.load(self.state)
        if owner is None:
            owner = Owner(self.prefix)
            owner.save(self.state)
        try:
            with self.locked():
                self._up(owner, qemu, say, timeout)
        except BaseException:
            if fresh and not os.environ.get("KVMTUI_LAB_KEEP_FAILED"):
                with contextlib.suppress(Exception):
                    say("failed on a fresh lab: removing what was made")
                    self.down(quiet=True)
            raise
        say(
            f"up (libvirt: {self.uri}; try: kvmtui lab --prefix {self.prefix} exec -- virsh "
            "net-list)"
        )

    def _up(self, owner: Owner, qemu: bool, say: Callable[[str], None], timeout: float) -> None:
        for sub in ("pids", "log", "vms", "qemu", "inet/www", "lan"):
            os.makedirs(self.path(sub), exist_ok=True)
        # --no-qemu on a lab whose guests run leaves them running (and listed)
        enabled = qemu or self.qemu_enabled()
        with open(self.path("qemu_enabled"), "w") as f:
            f.write("1\n" if enabled else "0\n")
        made = self._namespaces(owner)
        say(f"namespaces ready ({made} created)")
        self._wire()
        say("links ready: inet, host (wan0, br0, ens9), lan")
        self._services()
        say("fake Internet httpd and the LAN's router + dnsmasq running")
        sshd.start(self.prefix)  # kvm-host over SSH from the inet namespace (kvmtui.lab.sshd)
        self._libvirtd(say)
        import libvirt

        try:
            self._libvirt_steps(qemu, say)
        except libvirt.libvirtError as exc:
            raise LabError(f"libvirt: {exc}") from None
        self._wait_leases(qemu, say, timeout)

    def _libvirt_steps(self, qemu: bool, say: Callable[[str], None]) -> None:
        with libvirtd.connect(self.uri, timeout=5) as conn:
            started = libvirtd.ensure_networks(conn)
            say(f"libvirt networks active ({', '.join(started) or 'already'} started)")
            self._light_vms()
            say(f"{len(spec.LIGHT_VMS)} light VMs running")
            if qemu:
                self._qemu_vms(conn, say)

    def _namespaces(self, owner: Owner) -> int:
        made = 0
        for ns in self.all_namespaces():
            inode = netns_inode(ns)
            if inode is None:
                owner.namespaces[ns] = None
                owner.save(self.state)
                run("ip", "netns", "add", ns)
                run("ip", "-n", ns, "link", "set", "lo", "up")
                made += 1
                inode = netns_inode(ns)
            if owner.namespaces.get(ns) != inode:
                owner.namespaces[ns] = inode
                owner.save(self.state)
        return made

    def qemu_enabled(self) -> bool:
        """Whether this lab has its QEMU guests (recorded by ``up``)."""
        try:
            with open(self.path("qemu_enabled")) as f:
                return f.read().strip() == "1"
        except OSError:
            return False

    def _has_link(self, ns: str, dev: str) -> bool:
        return ok("ip", "-n", ns, "link", "show", "dev", dev)

    def _wire(self) -> None:
        inet, host, lan = self.inet, self.host, self.lan
        # fake Internet <-> host uplink
        if not self._has_link(host, spec.UPLINK):
            if self._has_link(inet, spec.INTERNET_DEV):
                run("ip", "-n", inet, "link", "del", spec.INTERNET_DEV)
            run("ip", "-n", inet, "link", "add", spec.INTERNET_DEV, "type", "veth",
                "peer", "name", spec.UPLINK, "netns", host)  # fmt: skip
        run("ip", "-n", inet, "addr", "replace", spec.INTERNET_CIDR, "dev", spec.INTERNET_DEV)
        run("ip", "-n", inet, "link", "set", spec.INTERNET_DEV, "up")
        run("ip", "-n", host, "addr", "replace", spec.UPLINK_CIDR, "dev", spec.UPLINK)
        run("ip", "-n", host, "link", "set", spec.UPLINK, "up")
        run("ip", "-n", host, "route", "replace", "default", "via", spec.INTERNET_IP)
        # fake Internet <-> the LAN router's uplink (a host route: .1 stays on eth0's /24)
        if not self._has_link(lan, spec.LAN_UPLINK):
            if self._has_link(inet, spec.INTERNET_LAN_DEV):
                run("ip", "-n", inet, "link", "del", spec.INTERNET_LAN_DEV)
            run("ip", "-n", inet, "link", "add", spec.INTERNET_LAN_DEV, "type", "veth",
                "peer", "name", spec.LAN_UPLINK, "netns", lan)  # fmt: skip
        run("ip", "-n", inet, "link", "set", spec.INTERNET_LAN_DEV, "up")
        run("ip", "-n", inet, "route", "replace", f"{spec.LAN_UPLINK_IP}/32",
            "dev", spec.INTERNET_LAN_DEV, "src", spec.INTERNET_IP)  # fmt: skip
        run("ip", "-n", lan, "addr", "replace", spec.LAN_UPLINK_CIDR, "dev", spec.LAN_UPLINK)
        run("ip", "-n", lan, "link", "set", spec.LAN_UPLINK, "up")
        run("ip", "-n", lan, "route", "replace", "default", "via", spec.INTERNET_IP)
        # host br0 + ens9 <-> LAN router eth0
        if not self._has_link(host, spec.BR_BRIDGE):
            run("ip", "-n", host, "link", "add", spec.BR_BRIDGE, "type", "bridge",
                "stp_state", "0", "forward_delay", "0")  # fmt: skip
        run("ip", "-n", host, "addr", "replace", spec.BR_HOST_CIDR, "dev", spec.BR_BRIDGE)
        run("ip", "-n", host, "link", "set", spec.BR_BRIDGE, "up")
        if not self._has_link(host, spec.BR_NIC):
            if self._has_link(lan, spec.LAN_DEV):
                run("ip", "-n", lan, "link", "del", spec.LAN_DEV)
            run("ip", "-n", host, "link", "add", spec.BR_NIC, "type", "veth", "peer", "name",
                spec.LAN_DEV, "address", spec.LAN_ROUTER_MAC, "netns", lan)  # fmt: skip
        run("ip", "-n", host, "link", "set", spec.BR_NIC, "master", spec.BR_BRIDGE, "up")
        run("ip", "-n", lan, "addr", "replace", f"{spec.LAN_ROUTER_IP}/24", "dev", spec.LAN_DEV)
        run("ip", "-n", lan, "link", "set", spec.LAN_DEV, "up")
        # the LAN router forwards and masquerades to the fake Internet
        run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", ns=lan)
        if not ok("nft", "list", "table", "ip", "kvmtui_lan", ns=lan):
            rules = self.path("lan", "nat.nft")
            with open(rules, "w") as f:
                f.write(
                    "table ip kvmtui_lan {\n"
                    "  chain post {\n"
                    "    type nat hook postrouting priority srcnat; policy accept;\n"
                    f'    ip saddr {spec.LAN_SUBNET} oifname "{spec.LAN_UPLINK}" masquerade\n'
                    "  }\n"
                    "}\n"
                )
            run("nft", "-f", rules, ns=lan)

    def _services(self) -> None:
        www = self.path("inet", "www")
        index = os.path.join(www, "index.html")
        if not os.path.exists(index):
            with open(index, "w") as f:
                f.write("<html><body>kvmtui lab: the fake Internet (198.51.100.1)</body></html>\n")
        if self.pids.alive("httpd") is None:
            spawn(self.pids, "httpd",
                  [BUSYBOX, "httpd", "-f", "-p", f"{spec.INTERNET_IP}:80", "-h", www],
                  self.inet, self.path("log", "httpd.log"))  # fmt: skip
        if self.pids.alive("lan-dnsmasq") is None:
            lo, hi = spec.LAN_RANGE
            argv = [
                "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-hosts",
                "--no-resolv", "--port=0", "--user=root", "--group=root",
                f"--interface={spec.LAN_DEV}", "--bind-interfaces", "--dhcp-authoritative",
                f"--dhcp-range={lo},{hi},255.255.255.0,1h",
                f"--dhcp-option=option:router,{spec.LAN_ROUTER_IP}",
                f"--dhcp-leasefile={self.path('lan', 'dnsmasq.leases')}",
                f"--pid-file={self.path('lan', 'dnsmasq.pid')}",
                "--log-dhcp", "--log-facility=-",
            ]  # fmt: skip
            spawn(self.pids, "lan-dnsmasq", argv, self.lan, self.path("log", "lan-dnsmasq.log"))

    def _libvirtd(self, say: Callable[[str], None]) -> None:
        libvirtd.prepare_config(self.state)
        if self.pids.alive("libvirtd") is not None:
            with libvirtd.connect(self.uri, timeout=10):
                say("libvirtd already running")
            return
        # a killed libvirtd may leave its socket and pid file behind
        for stale in ("run/libvirt/libvirt-sock", "run/libvirt/libvirt-sock-ro",
                      "run/libvirt/libvirt-admin-sock", "run/libvirtd.pid"):  # fmt: skip
            with contextlib.suppress(OSError):
                os.unlink(self.path(stale))
        # nothing of libvirt's runs any more (a reboot, everything killed): its runtime state
        # (networks and guests it believes active) is stale, start from a clean /run/libvirt
        host_inode = netns_inode(self.host)
        if host_inode is not None and not pids_in_netns(host_inode):
            shutil.rmtree(self.path("run", "libvirt"), ignore_errors=True)
            os.makedirs(self.path("run", "libvirt"), exist_ok=True)
        libvirtd.start(self.state, self.host, self.pids)
        t0 = time.monotonic()
        try:
            with libvirtd.connect(self.uri, timeout=60):
                pass
        except LabError:
            raise LabError(
                f"libvirtd did not answer within 60 s (see {self.path('log', 'libvirtd.out')})"
            ) from None
        say(f"libvirtd started ({time.monotonic() - t0:.1f} s to answer)")

    def _light_vms(self) -> None:
        for i, vm in enumerate(spec.LIGHT_VMS):
            assert vm.tap is not None
            ns = spec.ns_name(self.prefix, vm.name)
            name = f"vm-{vm.name}"
            if not self._has_link(self.host, vm.tap):
                # a new veth: the old loop's udhcpc holds the old one, start the VM afresh
                self.pids.kill(name)
                if self._has_link(ns, "eth0"):
                    run("ip", "-n", ns, "link", "del", "eth0")
                run("ip", "-n", self.host, "link", "add", vm.tap, "address", vm.tap_mac,
                    "type", "veth", "peer", "name", "eth0", "address", vm.mac,
                    "netns", ns)  # fmt: skip
            # (again) on every up: a restarted libvirt network is a new bridge
            run("ip", "-n", self.host, "link", "set", vm.tap, "master", vm.bridge, "up")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            if self.pids.alive(name) is None:
                # leftovers of a killed run (udhcpc, pings) go first
                inode = netns_inode(ns)
                if inode is not None:
                    kill_pids(pids_in_netns(inode))
                script = self._write_light_vm(vm, i)
                spawn(self.pids, name, [BUSYBOX, "sh", script], ns,
                      self.path("vms", vm.name, "loop.log"))  # fmt: skip

    def _write_light_vm(self, vm: spec.LabVm, index: int) -> str:
        d = self.path("vms", vm.name)
        os.makedirs(d, exist_ok=True)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(d, "lease"))
        with open(os.path.join(d, "udhcpc.sh"), "w") as f:
            f.write(
                f"#!{BUSYBOX} sh\n"
                f"B={BUSYBOX}\n"
                'case "$1" in\n'
                '  deconfig) $B ip -4 addr flush dev "$interface"; $B ip link set "$interface" up;'
                f" rm -f {d}/lease ;;\n"
                "  bound|renew)\n"
                '    $B ip -4 addr flush dev "$interface"\n'
                '    $B ip addr add "$ip/${mask:-24}" dev "$interface"\n'
                "    gw=${router%% *}\n"
                '    [ -n "$gw" ] && $B ip route replace default via "$gw" dev "$interface"\n'
                f'    echo "$ip $gw" > {d}/lease.new && $B mv {d}/lease.new {d}/lease ;;\n'
                "esac\nexit 0\n"
            )
        os.chmod(os.path.join(d, "udhcpc.sh"), 0o755)
        peers = [p.name for p in spec.LIGHT_VMS if p.network == vm.network and p.name != vm.name]
        peer_reads = "".join(
            f'  [ -f {self.path("vms", p, "lease")} ] && read pip pgw < '
            f'{self.path("vms", p, "lease")} && ping1 "$pip"\n'
            for p in peers
        ) if vm.network == spec.ISO_NET else ""  # fmt: skip
        extra = (
            f"  [ $((n % 5)) -eq 0 ] && ping1 {spec.BR_HOST_IP}\n"
            if vm.network == spec.BR_NET
            else ""
        )
        if vm.network == spec.ISO_NET:  # host-only VMs try the Internet now and then, and fail
            extra = f"  [ $((n % 4)) -eq 1 ] && ping1 {spec.INTERNET_IP}\n"
        script = os.path.join(d, "loop.sh")
        with open(script, "w") as f:
            f.write(
                f"# kvmtui lab light VM {vm.name}: DHCP, then a little traffic every few s\n"
                f"B={BUSYBOX}\n"
                'ping1() { $B ping -c 1 -W 1 "$1" >/dev/null 2>&1; }\n'
                f"$B udhcpc -f -i eth0 -s {d}/udhcpc.sh -x hostname:{vm.name} "
                f"-T 2 -t 5 -A 1 >> {d}/udhcpc.log 2>&1 &\n"
                "n=0\n"
                "while :; do\n"
                f"  if [ -f {d}/lease ]; then\n"
                f"    read ip gw < {d}/lease\n"
                '    ping1 "$gw"\n'
                f"    ping1 {vm.target}\n"
                f"  {peer_reads}"
                f"  {extra}"
                "  fi\n"
                "  n=$((n+1))\n"
                f"  $B sleep {3 + index % 2}\n"
                "done\n"
            )
        return script

    def _qemu_vms(self, conn: object, say: Callable[[str], None]) -> None:
        found = initramfs.kernel()
        assert found is not None
        kernel, kver = found
        initrd = self.path("qemu", f"initramfs-{kver}.cpio.gz")
        if not os.path.exists(initrd):
            t0 = time.monotonic()
            initramfs.build(kver, initrd)
            say(f"guest initramfs built for {kver} ({time.monotonic() - t0:.1f} s)")
        kvm = kvm_usable()
        started = []
        for vm in spec.QEMU_VMS:
            xml = libvirtd.domain_xml(vm, self.state, kernel, initrd, kvm)
            if libvirtd.ensure_domain(conn, xml, vm.name, console_path(self.state, vm)):
                started.append(vm.name)
        say(
            f"QEMU guests running ({'KVM' if kvm else 'TCG'}; started: "
            f"{', '.join(started) or 'none, already running'})"
        )

    def _wait_leases(self, qemu: bool, say: Callable[[str], None], timeout: float) -> None:
        vms = list(spec.LIGHT_VMS) + (list(spec.QEMU_VMS) if qemu else [])
        pending = {vm.name: vm for vm in vms}
        t0 = time.monotonic()
        deadline = t0 + timeout
        said = 0.0
        while pending:
            for name, vm in list(pending.items()):
                ip = (
                    light_vm_ip(self.prefix, vm)
                    if vm.kind == "light"
                    else qemu_vm_ip(self.state, vm)
                )
                if ip:
                    say(f"{name} has {ip} ({vm.network})")
                    del pending[name]
            if not pending:
                break
            now = time.monotonic()
            if now >= deadline:
                raise LabError(
                    f"no DHCP lease after {timeout:.0f} s for: {', '.join(sorted(pending))} "
                    f"(logs in {self.state})"
                )
            if now - said > 15:
                said = now
                say(f"waiting for leases: {', '.join(sorted(pending))}")
            time.sleep(0.3)

    # -- down ----------------------------------------------------------------------------

    def down(self, quiet: bool = False) -> bool:
        """Remove the lab; False when there was nothing of it."""
        say = Progress(self.prefix, quiet)
        if os.geteuid() != 0:
            raise LabError("the lab needs root: run it with sudo or as root")
        owner = self.check_ownership()
        if owner is None:
            return False
        with self.locked():
            sshd.stop(self.prefix)
            if self.pids.alive("libvirtd") is not None:
                if libvirtd.destroy_all(self.uri):
                    say("libvirt guests and networks stopped")
                else:
                    pid = self.pids.alive("libvirtd")
                    say(f"libvirtd did not answer in {libvirtd.DOWN_DEADLINE_S:.0f} s: killing it "
                        f"(pid {pid})")  # fmt: skip
                    self.pids.kill("libvirtd")
            for name in self.pids.names():
                self.pids.kill(name)
            # what libvirt started (dnsmasq, qemu) when libvirtd itself was gone
            self._kill_libvirt_children()
            for ns in owner.namespaces:
                inode = netns_inode(ns)
                if inode is not None and owner.owns(ns, inode):
                    kill_pids(pids_in_netns(inode))
            say("processes stopped")
            for ns in list(owner.namespaces):
                inode = netns_inode(ns)
                if inode is not None and owner.owns(ns, inode):
                    run("ip", "netns", "del", ns)
            say("namespaces removed")
            shutil.rmtree(self.state, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.state))
        say("removed")
        return True

    def _kill_libvirt_children(self) -> None:
        pids = []
        for pattern in ("run/libvirt/network/*.pid", "run/libvirt/qemu/*.pid"):
            import glob

            for pf in glob.glob(self.path(pattern)):
                try:
                    with open(pf) as f:
                        pid = int(f.read().split()[0])
                    exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
                except (OSError, ValueError, IndexError):
                    continue
                if exe.startswith(("dnsmasq", "qemu-system")):
                    pids.append(pid)
        kill_pids(pids)


def lab_exists(prefix: str) -> bool:
    return os.path.exists(os.path.join(spec.state_dir(prefix), "owner.json"))


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr)
