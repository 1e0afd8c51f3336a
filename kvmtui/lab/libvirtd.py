"""The lab's own libvirtd: confined folders, start/stop, networks and QEMU guest definitions.

libvirtd runs in the lab's host namespace *and* a private mount namespace in which
/etc/libvirt, /var/lib/libvirt, /run/libvirt, /var/log/libvirt and /var/cache/libvirt are bind
mounts of folders under the lab's folder: nothing of a real host's libvirt is read or written.
Clients connect through the socket in ``{state}/run/libvirt`` (see ``spec.libvirt_uri``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

from kvmtui.lab import spec
from kvmtui.lab.procs import LabError, PidRecords, spawn

# lab folder -> where libvirtd sees it
BIND_MOUNTS = (
    ("etc/libvirt", "/etc/libvirt"),
    ("lib/libvirt", "/var/lib/libvirt"),
    ("run/libvirt", "/run/libvirt"),
    ("log/libvirt", "/var/log/libvirt"),
    ("cache/libvirt", "/var/cache/libvirt"),
)

QEMU_CONF = """
# kvmtui lab: libvirtd runs as root in namespaces, without systemd, cgroups or virtlogd
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
"""

LIBVIRTD_CONF = """
# kvmtui lab
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""

# the lab's sockets are root's only (libvirt's default without polkit is 0777)
SOCKET_CONF = """
# kvmtui lab: root-only sockets
unix_sock_group = "root"
unix_sock_ro_perms = "0600"
unix_sock_rw_perms = "0600"
unix_sock_admin_perms = "0600"
"""
DOWN_DEADLINE_S = 10.0


def _quiet_errors() -> None:
    import libvirt

    def _ignore(_ctx: object, _err: object) -> None:
        return None

    libvirt.registerErrorHandler(_ignore, None)


def prepare_config(state: str) -> None:
    """Create the confined folders and a clean copy of the packaged configuration (idempotent)."""
    for sub, _ in BIND_MOUNTS:
        os.makedirs(os.path.join(state, sub), exist_ok=True)
    etc = os.path.join(state, "etc/libvirt")
    marker = os.path.join(etc, ".kvmtui-configured")
    os.chmod(os.path.join(state, "run/libvirt"), 0o700)
    if os.path.exists(marker):
        _root_only_sockets(etc)
        return
    for conf in glob.glob("/etc/libvirt/*.conf"):
        shutil.copy2(conf, etc)
    if os.path.isdir("/etc/libvirt/nwfilter"):
        shutil.copytree("/etc/libvirt/nwfilter", os.path.join(etc, "nwfilter"), dirs_exist_ok=True)
    # no packaged networks, no autostart links, no domains of the real host
    os.makedirs(os.path.join(etc, "qemu/networks/autostart"), exist_ok=True)
    with open(os.path.join(etc, "qemu.conf"), "a") as f:
        f.write(QEMU_CONF)
    with open(os.path.join(etc, "libvirtd.conf"), "a") as f:
        f.write(LIBVIRTD_CONF)
    _root_only_sockets(etc)
    open(marker, "w").close()


def _root_only_sockets(etc: str) -> None:
    conf = os.path.join(etc, "libvirtd.conf")
    with contextlib.suppress(OSError):
        with open(conf) as f:
            if "kvmtui lab: root-only sockets" in f.read():
                return
        with open(conf, "a") as f:
            f.write(SOCKET_CONF)


def start(state: str, host_ns: str, records: PidRecords) -> int:
    """Start libvirtd in ``host_ns`` and a private mount namespace; return its PID."""
    mounts = " && ".join(
        f"mount --bind {shlex.quote(os.path.join(state, sub))} {target}"
        for sub, target in BIND_MOUNTS
    )
    pidfile = os.path.join(state, "run", "libvirtd.pid")
    # /run/libvirt does not exist where no libvirtd ever ran, and we do not create it in the
    # real /run: libvirtd (and the dnsmasqs, QEMUs it starts) get a private tmpfs on /run
    script = (
        "mount -t tmpfs -o mode=0755 kvmtui-lab-run /run && mkdir -p /run/libvirt /run/lock"
        f" && {mounts} && exec libvirtd -p {shlex.quote(pidfile)}"
    )
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
    log = os.path.join(state, "log", "libvirtd.out")
    return spawn(records, "libvirtd", argv, host_ns, log)


@contextlib.contextmanager
def connect(uri: str, timeout: float = 0.0) -> Iterator[Any]:
    """A libvirt connection to the lab's daemon (retried up to ``timeout`` seconds)."""
    import libvirt

    _quiet_errors()
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = libvirt.open(uri)
            break
        except libvirt.libvirtError as exc:
            if time.monotonic() >= deadline:
                raise LabError(f"cannot connect to the lab's libvirtd: {exc}") from None
            time.sleep(0.2)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def network_xml(name: str) -> str:
    if name == spec.NAT_NET:
        return f"""<network>
  <name>{spec.NAT_NET}</name>
  <forward mode='nat'/>
  <bridge name='{spec.NAT_BRIDGE}' stp='on' delay='0'/>
  <ip address='{spec.NAT_GATEWAY}' netmask='255.255.255.0'>
    <dhcp><range start='{spec.NAT_RANGE[0]}' end='{spec.NAT_RANGE[1]}'/></dhcp>
  </ip>
</network>"""
    if name == spec.ISO_NET:
        return f"""<network>
  <name>{spec.ISO_NET}</name>
  <bridge name='{spec.ISO_BRIDGE}' stp='on' delay='0'/>
  <ip address='{spec.ISO_GATEWAY}' netmask='255.255.255.0'>
    <dhcp><range start='{spec.ISO_RANGE[0]}' end='{spec.ISO_RANGE[1]}'/></dhcp>
  </ip>
</network>"""
    if name == spec.BR_NET:
        return f"""<network>
  <name>{spec.BR_NET}</name>
  <forward mode='bridge'/>
  <bridge name='{spec.BR_BRIDGE}'/>
</network>"""
    raise KeyError(name)


NETWORKS = (spec.NAT_NET, spec.ISO_NET, spec.BR_NET)


def ensure_networks(conn: Any) -> list[str]:
    """Define and start the three networks; return the names that had to be (re)started."""
    started = []
    defined = set(conn.listDefinedNetworks()) | set(conn.listNetworks())
    for name in NETWORKS:
        if name not in defined:
            conn.networkDefineXML(network_xml(name))
        net = conn.networkLookupByName(name)
        if not net.isActive():
            net.create()
            started.append(name)
    return started


def domain_xml(vm: spec.LabVm, state: str, kernel: str, initrd: str, kvm: bool) -> str:
    extra = f" kvmtui.extra={spec.BR_HOST_IP}" if vm.network == spec.BR_NET else ""
    cmdline = (
        f"console=ttyS0 panic=-1 quiet loglevel=3 kvmtui.name={vm.name} kvmtui.target={vm.target}"
        + extra
    )
    console = os.path.join(state, "qemu", f"{vm.name}.console.log")
    return f"""<domain type='{"kvm" if kvm else "qemu"}'>
  <name>{vm.name}</name>
  <description>kvmtui lab guest</description>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(kernel)}</kernel>
    <initrd>{escape(initrd)}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <interface type='network'>
      <source network='{vm.network}'/>
      <mac address='{vm.mac}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='{escape(console)}' append='off'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


def ensure_domain(conn: Any, xml: str, name: str, console: str | None = None) -> bool:
    """Define (or redefine) and start a guest; True when it had to be started."""
    import libvirt

    try:
        dom = conn.lookupByName(name)
    except libvirt.libvirtError:
        dom = None
    if dom is not None and dom.isActive():
        return False
    if console is not None:  # no stale lease line from an earlier boot
        with contextlib.suppress(OSError):
            os.unlink(console)
    if dom is not None:  # defined but shut off: keep its UUID, take the current XML
        xml = xml.replace("<name>", f"<uuid>{dom.UUIDString()}</uuid>\n  <name>", 1)
    dom = conn.defineXML(xml)
    dom.create()
    return True


def destroy_all(uri: str, deadline_s: float = DOWN_DEADLINE_S) -> bool:
    """Stop every guest and network of the lab's libvirtd (best effort, quick). False when
    libvirtd did not finish within ``deadline_s`` (hung, stopped): the caller then kills it by
    its recorded PID. The calls run in a daemon thread, so a hung daemon never blocks us."""
    import threading

    done = threading.Event()

    def _work() -> None:
        try:
            _destroy_all(uri)
        finally:
            done.set()

    threading.Thread(target=_work, name="lab-destroy", daemon=True).start()
    return done.wait(deadline_s)


def _destroy_all(uri: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import libvirt

    def _destroy(obj: Any) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            if obj.isActive():
                obj.destroy()

    try:
        with connect(uri) as conn, ThreadPoolExecutor(max_workers=4) as pool:
            # each takes 1-2 s (SIGTERM and wait, firewall rules): in parallel
            list(pool.map(_destroy, conn.listAllDomains()))
            list(pool.map(_destroy, conn.listAllNetworks()))
    except LabError:
        return
