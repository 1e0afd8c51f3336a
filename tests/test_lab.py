"""The seed's facts, on the real lab (root, namespaces, a real libvirtd, dnsmasq, QEMU/TCG).

Session lab: see ``lab`` in conftest.py. Lifecycle tests (down, crash recovery, refusals) use
small labs of their own prefixes with --no-qemu, so the session lab stays up for the others.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import time

import pytest
from labtools import NOTHING, kvmtui_cmd, lab_cli, lab_inodes, lab_traces

from kvmtui.core.netns import in_netns
from kvmtui.lab import spec
from kvmtui.lab.handle import LabHandle
from kvmtui.lab.probe import Owner
from kvmtui.lab.procs import kill_pids, pids_in_netns, start_time

pytestmark = pytest.mark.lab


def in_net(ip: str, subnet: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(subnet)


def ping(lab: LabHandle, ns: str, target: str, count: int = 2) -> bool:
    cp = lab.run(ns, "busybox", "ping", "-c", str(count), "-W", "2", target, timeout=30)
    return cp.returncode == 0


def libvirt_leases(lab: LabHandle, network: str) -> list[dict[str, object]]:
    import libvirt

    conn = libvirt.open(lab.uri)
    try:
        leases: list[dict[str, object]] = conn.networkLookupByName(network).DHCPLeases()
        return leases
    finally:
        conn.close()


def fdb(lab: LabHandle, bridge: str) -> list[dict[str, object]]:
    """br0's FDB as the kernel has it, through pyroute2 in the host namespace."""
    from pyroute2 import IPRoute

    with in_netns(lab.host_ns):
        ipr = IPRoute()
    try:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        br = ipr.link_lookup(ifname=bridge)[0]
        out = []
        for msg in ipr.fdb("dump"):
            if msg.get_attr("NDA_MASTER") != br:
                continue
            out.append({"mac": msg.get_attr("NDA_LLADDR"), "port": names.get(msg["ifindex"])})
        return out
    finally:
        ipr.close()


def wait_for(pred: object, timeout: float, what: str) -> None:
    assert callable(pred)
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def lan_leases(lab: LabHandle) -> str:
    with open(os.path.join(lab.state_dir, "lan", "dnsmasq.leases")) as f:
        return f.read()


# -- NAT -----------------------------------------------------------------------------------


def test_nat_light_vm_lease_listed_by_libvirt(lab: LabHandle) -> None:
    vm = spec.lab_vm("nat-light")
    ip = lab.wait_ip(vm.name, timeout=60)
    assert in_net(ip, spec.NAT_SUBNET)
    leases = libvirt_leases(lab, spec.NAT_NET)
    mine = [le for le in leases if le["mac"] == vm.mac]
    assert mine, f"no libvirt lease for {vm.mac}: {leases}"
    assert mine[0]["ipaddr"] == ip
    assert mine[0]["hostname"] == vm.name


def test_nat_light_vm_reaches_internet_through_masquerade(lab: LabHandle) -> None:
    vm = spec.lab_vm("nat-light")
    lab.wait_ip(vm.name, timeout=60)
    assert ping(lab, lab.vm_ns(vm.name), spec.INTERNET_IP)
    page = lab.run(lab.vm_ns(vm.name), "busybox", "wget", "-qO-", f"http://{spec.INTERNET_IP}/")
    assert "fake Internet" in page.stdout
    # the host's conntrack: the reply goes to the host's uplink address (MASQUERADE)
    ct = lab.run(lab.host_ns, "conntrack", "-L", "-p", "icmp", "-d", spec.INTERNET_IP)
    assert f"src={spec.INTERNET_IP} dst={spec.UPLINK_IP}" in ct.stdout, ct.stdout + ct.stderr


def test_nat_tap_is_a_port_of_virbr0(lab: LabHandle) -> None:
    vm = spec.lab_vm("nat-light")
    lab.wait_ip(vm.name, timeout=60)
    links = json.loads(lab.run(lab.host_ns, "ip", "-j", "link", "show", "master", "virbr0").stdout)
    ports = {link["ifname"]: link["address"] for link in links}
    assert ports.get(vm.tap) == vm.tap_mac


# -- bridged -------------------------------------------------------------------------------


def test_bridged_light_vm_gets_lease_from_the_lan(lab: LabHandle) -> None:
    vm = spec.lab_vm("br-light")
    ip = lab.wait_ip(vm.name, timeout=60)
    assert in_net(ip, spec.LAN_SUBNET)
    lo, hi = (ipaddress.ip_address(a) for a in spec.LAN_RANGE)
    assert lo <= ipaddress.ip_address(ip) <= hi
    # the LAN's dnsmasq gave it (its lease file), not libvirt (a bridge network has no DHCP)
    line = [row for row in lan_leases(lab).splitlines() if vm.mac in row]
    assert line and ip in line[0] and vm.name in line[0]
    route = json.loads(lab.run(lab.vm_ns(vm.name), "ip", "-j", "route", "show", "default").stdout)
    assert route[0]["gateway"] == spec.LAN_ROUTER_IP


def test_bridged_light_vm_mac_learned_on_its_tap(lab: LabHandle) -> None:
    vm = spec.lab_vm("br-light")
    lab.wait_ip(vm.name, timeout=60)
    assert ping(lab, lab.vm_ns(vm.name), spec.LAN_ROUTER_IP)
    entries = fdb(lab, spec.BR_BRIDGE)
    assert {"mac": vm.mac, "port": vm.tap} in entries, entries
    assert {"mac": spec.LAN_ROUTER_MAC, "port": spec.BR_NIC} in entries, entries
    # the test-side reference agrees
    ref = json.loads(lab.run(lab.host_ns, "bridge", "-j", "fdb", "show", "br", "br0").stdout)
    assert any(e["mac"] == vm.mac and e["ifname"] == vm.tap for e in ref)


def test_host_neighbour_table_learns_the_bridged_vm(lab: LabHandle) -> None:
    """The bridged VMs ping the host's br0 address now and then (every ~15 s), so the host
    knows their IP <-> MAC without being their router."""
    from pyroute2 import IPRoute

    vm = spec.lab_vm("br-light")
    ip = lab.wait_ip(vm.name, timeout=60)

    def known() -> bool:
        with in_netns(lab.host_ns):
            ipr = IPRoute()
        try:
            br = ipr.link_lookup(ifname=spec.BR_BRIDGE)[0]
            return any(
                n.get_attr("NDA_DST") == ip and n.get_attr("NDA_LLADDR") == vm.mac
                for n in ipr.get_neighbours(ifindex=br)
            )
        finally:
            ipr.close()

    wait_for(known, 40, f"{ip} {vm.mac} in the host's neighbour table on br0")


def test_bridged_light_vm_reaches_internet_via_lan_router(lab: LabHandle) -> None:
    vm = spec.lab_vm("br-light")
    lab.wait_ip(vm.name, timeout=60)
    assert ping(lab, lab.vm_ns(vm.name), spec.INTERNET_IP)
    # masqueraded by the LAN's router (198.51.100.3), not by the KVM host
    ct = lab.run(lab.ns(spec.NS_LAN), "conntrack", "-L", "-p", "icmp", "-d", spec.INTERNET_IP)
    assert f"src={spec.INTERNET_IP} dst={spec.LAN_UPLINK_IP}" in ct.stdout, ct.stdout
    host_ct = lab.run(lab.host_ns, "conntrack", "-L", "-p", "icmp", "-s", spec.LAN_SUBNET)
    assert f"dst={spec.UPLINK_IP}" not in host_ct.stdout


# -- host-only -----------------------------------------------------------------------------


def test_hostonly_vms_reach_each_other_not_the_internet(lab: LabHandle) -> None:
    a, b = spec.lab_vm("iso-a"), spec.lab_vm("iso-b")
    ip_a = lab.wait_ip(a.name, timeout=60)
    ip_b = lab.wait_ip(b.name, timeout=60)
    assert in_net(ip_a, spec.ISO_SUBNET) and in_net(ip_b, spec.ISO_SUBNET)
    assert ping(lab, lab.vm_ns(a.name), ip_b)
    assert ping(lab, lab.vm_ns(b.name), spec.ISO_GATEWAY)
    assert not ping(lab, lab.vm_ns(a.name), spec.INTERNET_IP, count=1)
    # not only for want of a route: with a default route via the host, the host still refuses
    ns = lab.vm_ns(a.name)
    lab.run(ns, "ip", "route", "add", "default", "via", spec.ISO_GATEWAY, check=True)
    try:
        assert not ping(lab, ns, spec.INTERNET_IP, count=1)
    finally:
        lab.run(ns, "ip", "route", "del", "default", "via", spec.ISO_GATEWAY)


def test_hostonly_leases_listed_by_libvirt(lab: LabHandle) -> None:
    for name in ("iso-a", "iso-b"):
        vm = spec.lab_vm(name)
        ip = lab.wait_ip(name, timeout=60)
        leases = libvirt_leases(lab, spec.ISO_NET)
        assert any(le["mac"] == vm.mac and le["ipaddr"] == ip for le in leases), leases


# -- QEMU guests ---------------------------------------------------------------------------


def need_qemu(lab: LabHandle) -> None:
    if not lab.qemu:
        pytest.skip("QEMU guests are off (KVMTUI_LAB_QEMU=0)")


@pytest.mark.qemu
def test_qemu_nat_guest_lease_and_ping(lab: LabHandle) -> None:
    need_qemu(lab)
    vm = spec.lab_vm("nat-qemu")
    ip = lab.wait_ip(vm.name, timeout=120)
    assert in_net(ip, spec.NAT_SUBNET)
    leases = libvirt_leases(lab, spec.NAT_NET)
    assert any(
        le["mac"] == vm.mac and le["ipaddr"] == ip and le["hostname"] == vm.name for le in leases
    ), leases
    wait_for(
        lambda: f"kvmtui-ping {spec.INTERNET_IP} ok" in lab.console_log(vm.name),
        60,
        "the guest's ping to the fake Internet",
    )
    # its tap is a port of virbr0 and its MAC is learned there
    wait_for(
        lambda: any(e["mac"] == vm.mac for e in fdb(lab, spec.NAT_BRIDGE)),
        30,
        "the guest's MAC in virbr0's FDB",
    )
    port = next(e["port"] for e in fdb(lab, spec.NAT_BRIDGE) if e["mac"] == vm.mac)
    assert isinstance(port, str) and port.startswith("vnet")
    assert port not in {v.tap for v in spec.LIGHT_VMS}


@pytest.mark.qemu
def test_qemu_bridged_guest_lease_from_lan_and_fdb(lab: LabHandle) -> None:
    need_qemu(lab)
    vm = spec.lab_vm("br-qemu")
    ip = lab.wait_ip(vm.name, timeout=120)
    assert in_net(ip, spec.LAN_SUBNET)
    assert any(vm.mac in row and ip in row for row in lan_leases(lab).splitlines())
    wait_for(
        lambda: f"kvmtui-ping {spec.INTERNET_IP} ok" in lab.console_log(vm.name),
        60,
        "the guest's ping to the fake Internet",
    )
    wait_for(
        lambda: any(
            e["mac"] == vm.mac and str(e["port"]).startswith("vnet")
            for e in fdb(lab, spec.BR_BRIDGE)
        ),
        30,
        "the guest's MAC on its tap in br0's FDB",
    )


# -- commands ------------------------------------------------------------------------------


def test_status_json_says_up(lab: LabHandle) -> None:
    cp = lab_cli(lab.prefix, "status", "--json")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    st = json.loads(cp.stdout)
    assert st["up"] is True and st["uri"] == lab.uri
    assert st["networks"] == {spec.NAT_NET: True, spec.ISO_NET: True, spec.BR_NET: True}
    ips = {vm["name"]: vm["ip"] for vm in st["vms"]}
    for vm in lab.vms:
        assert ips[vm.name] == lab.wait_ip(vm.name, timeout=5)


def test_exec_runs_in_the_host_namespace_with_the_lab_uri(lab: LabHandle) -> None:
    cp = subprocess.run(
        kvmtui_cmd("lab", "--prefix", lab.prefix, "exec", "--", "virsh", "net-list", "--name"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cp.returncode == 0, cp.stderr
    assert set(cp.stdout.split()) == {spec.NAT_NET, spec.ISO_NET, spec.BR_NET}
    cp = subprocess.run(
        kvmtui_cmd(
            "lab", "--prefix", lab.prefix, "exec", "--", "sh", "-c",
            'echo "$LIBVIRT_DEFAULT_URI"; readlink /proc/self/ns/net',
        ),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    uri, netns = cp.stdout.split()
    assert uri == lab.uri
    assert netns == f"net:[{os.stat('/run/netns/' + lab.host_ns).st_ino}]"


def test_up_again_is_fast_and_changes_nothing(lab: LabHandle) -> None:
    before = lab_cli(lab.prefix, "status", "--json")
    st0 = json.loads(before.stdout)
    t0 = time.monotonic()
    cp = lab_cli(lab.prefix, "up", *([] if lab.qemu else ["--no-qemu"]))
    took = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    assert took < 15, f"second up took {took:.1f} s"
    st1 = json.loads(lab_cli(lab.prefix, "status", "--json").stdout)
    assert st1["processes"] == st0["processes"]  # same PIDs: nothing restarted
    assert st1["up"] is True


# -- lifecycle on small labs of their own ----------------------------------------------------


def test_down_removes_everything_even_after_a_crash() -> None:
    prefix = "kvmtuid-"
    lab_cli(prefix, "down")
    try:
        cp = lab_cli(prefix, "up", "--no-qemu")
        assert cp.returncode == 0, cp.stderr
        traces = lab_traces(prefix)
        assert len(traces["namespaces"]) == 3 + len(spec.LIGHT_VMS)  # type: ignore[arg-type]
        owner = Owner.load(spec.state_dir(prefix))
        assert owner is not None
        pids = {}
        for name in ("libvirtd", "lan-dnsmasq", "httpd", "vm-nat-light"):
            with open(os.path.join(spec.state_dir(prefix), "pids", f"{name}.pid")) as f:
                pid, started = (int(x) for x in f.read().split()[:2])
                pids[name] = (pid, started)
        # a crash: libvirtd and a VM loop killed hard; up repairs them
        os.kill(pids["libvirtd"][0], signal.SIGKILL)
        os.killpg(pids["vm-nat-light"][0], signal.SIGKILL)
        # and a VM's tap deleted (its loop still runs, on a veth that is gone)
        br = spec.lab_vm("br-light")
        subprocess.run(["ip", "-n", f"{prefix}host", "link", "del", str(br.tap)], check=True)
        cp = lab_cli(prefix, "up", "--no-qemu")
        assert cp.returncode == 0, cp.stderr
        st = json.loads(lab_cli(prefix, "status", "--json").stdout)
        assert st["up"] is True
        assert st["processes"]["libvirtd"] not in (None, pids["libvirtd"][0])
        ips = {vm["name"]: vm["ip"] for vm in st["vms"]}
        assert ips["br-light"] and ips["nat-light"], ips
        # as after a reboot: every process and namespace gone, the folder (on disk) still there
        for ns in lab_traces(prefix)["namespaces"]:  # type: ignore[attr-defined]
            kill_pids(pids_in_netns(os.stat(f"/run/netns/{ns}").st_ino), grace=0)
            subprocess.run(["ip", "netns", "del", ns], check=True)
        cp = lab_cli(prefix, "up", "--no-qemu")
        assert cp.returncode == 0, cp.stderr
        assert json.loads(lab_cli(prefix, "status", "--json").stdout)["up"] is True
        inodes = lab_inodes(prefix)
        t0 = time.monotonic()
        cp = lab_cli(prefix, "down")
        assert cp.returncode == 0, cp.stderr
        print(f"lab down took {time.monotonic() - t0:.1f} s")
        assert lab_traces(prefix, inodes) == NOTHING
        for pid, started in pids.values():
            assert start_time(pid) != started, f"{pid} still runs"
    finally:
        lab_cli(prefix, "down")


def test_down_after_up_killed_midway() -> None:
    prefix = "kvmtuik-"
    lab_cli(prefix, "down")
    try:
        proc = subprocess.Popen(
            kvmtui_cmd("lab", "--prefix", prefix, "up", "--no-qemu"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:  # kill it once libvirtd runs, before the VMs have leases
            if "libvirt networks active" in line:
                break
        proc.kill()
        proc.wait()
        assert lab_traces(prefix)["namespaces"]  # it did leave things behind
        inodes = lab_inodes(prefix)
        cp = lab_cli(prefix, "down")
        assert cp.returncode == 0, cp.stderr
        assert lab_traces(prefix, inodes) == NOTHING
    finally:
        lab_cli(prefix, "down")


def test_not_root_is_refused_with_one_line() -> None:
    cp = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         *kvmtui_cmd("lab", "--prefix", "kvmtuin-", "up", "--no-qemu")],
        capture_output=True, text=True, timeout=60, cwd="/",
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))},
    )  # fmt: skip
    assert cp.returncode == 1
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and "root" in lines[0], cp.stderr
    assert "Traceback" not in cp.stderr
    assert lab_traces("kvmtuin-") == NOTHING


def test_missing_packages_are_named() -> None:
    # a PATH without the tools stands in for a machine without the packages
    env = {**os.environ, "PATH": "/nonexistent"}
    cp = subprocess.run(
        kvmtui_cmd("lab", "--prefix", "kvmtuim-", "up", "--no-qemu"),
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert cp.returncode == 1
    assert cp.stderr.count("\n") == 1
    assert "apt-get install" in cp.stderr and "iproute2" in cp.stderr
    assert "libvirt-daemon-system" in cp.stderr and "dnsmasq-base" in cp.stderr
    assert lab_traces("kvmtuim-") == NOTHING


def test_a_namespace_not_ours_is_refused_and_kept() -> None:
    prefix = "kvmtuix-"
    taken = spec.ns_name(prefix, spec.NS_HOST)
    subprocess.run(["ip", "netns", "add", taken], check=True)
    try:
        cp = lab_cli(prefix, "up", "--no-qemu")
        assert cp.returncode == 1
        assert taken in cp.stderr and "not made by this lab" in cp.stderr
        assert cp.stderr.count("\n") == 1
        # nothing half-built, and the foreign namespace is untouched (down refuses it too)
        assert lab_traces(prefix)["namespaces"] == [taken]
        assert not os.path.exists(spec.state_dir(prefix))
        cp = lab_cli(prefix, "down")
        assert cp.returncode == 1 and os.path.exists(f"/run/netns/{taken}")
    finally:
        subprocess.run(["ip", "netns", "del", taken])


def test_a_folder_not_ours_is_refused_and_kept() -> None:
    prefix = "kvmtuif-"
    state = spec.state_dir(prefix)
    os.makedirs(state)
    try:
        with open(os.path.join(state, "precious"), "w") as f:
            f.write("not the lab's\n")
        cp = lab_cli(prefix, "up", "--no-qemu")
        assert cp.returncode == 1 and state in cp.stderr and "marker" in cp.stderr
        assert os.listdir(state) == ["precious"]
        assert lab_traces(prefix)["namespaces"] == []
    finally:
        subprocess.run(["rm", "-rf", state])


def test_exec_without_lab_or_command_is_a_clear_error() -> None:
    cp = subprocess.run(
        kvmtui_cmd("lab", "--prefix", "kvmtuie-", "exec", "--", "true"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cp.returncode == 1 and "not up" in cp.stderr
    cp = lab_cli("kvmtuie-", "exec")
    assert cp.returncode == 1 and "needs a command" in cp.stderr
    cp = lab_cli("kvmtuie-", "status")
    assert cp.returncode == 3 and "not up" in cp.stdout
    cp = lab_cli("kvmtuie-", "down")
    assert cp.returncode == 0 and "nothing to remove" in cp.stdout
    assert lab_traces("kvmtuie-") == NOTHING


def test_exec_passes_the_exit_status_through(lab: LabHandle) -> None:
    cp = lab_cli(lab.prefix, "exec", "--", "sh", "-c", "exit 7")
    assert cp.returncode == 7


# -- pieces without a lab ------------------------------------------------------------------


def test_initramfs_is_a_valid_cpio_with_busybox_modules_and_init(tmp_path: object) -> None:
    from kvmtui.lab import initramfs

    found = initramfs.kernel()
    assert found is not None, "linux-image-amd64 gives the guest kernel"
    _, kver = found
    out = os.path.join(str(tmp_path), "initrd.cpio.gz")
    initramfs.build(kver, out)
    # busybox's own cpio is the reference reader of the newc archive
    listing = subprocess.run(
        f"gzip -dc {out} | busybox cpio -t", shell=True, capture_output=True, text=True
    )
    names = set(listing.stdout.split())
    assert {"init", "bin/busybox", "udhcpc.sh", "dev/console"} <= names, listing.stderr
    for mod in initramfs.MODULES:
        if initramfs.find_module(kver, mod):
            assert f"lib/modules/{mod}.ko" in names
    extract = os.path.join(str(tmp_path), "x")
    os.makedirs(extract)
    subprocess.run(f"gzip -dc {out} | busybox cpio -id", shell=True, cwd=extract, check=True)
    with open(os.path.join(extract, "lib/modules/virtio_net.ko"), "rb") as f:
        assert f.read(4) == b"\x7fELF"  # decompressed, loadable by busybox insmod
    assert os.access(os.path.join(extract, "init"), os.X_OK)


def test_compressed_modules_are_decompressed(tmp_path: object) -> None:
    import gzip
    import lzma

    from kvmtui.lab.initramfs import _read_module

    payload = b"\x7fELF" + bytes(range(256)) * 40
    for suffix, pack in ((".ko.xz", lzma.compress), (".ko.gz", gzip.compress)):
        path = os.path.join(str(tmp_path), "m" + suffix)
        with open(path, "wb") as f:
            f.write(pack(payload))
        assert _read_module(path) == payload


def test_handle_names() -> None:
    h = LabHandle.for_prefix("kvmtuit-", qemu=False)
    assert h.host_ns == "kvmtuit-host" and h.ns(spec.NS_LAN) == "kvmtuit-lan"
    assert h.vm_ns("iso-a") == "kvmtuit-iso-a"
    assert h.uri == spec.libvirt_uri("kvmtuit-") and h.uri.endswith("/libvirt-sock")
    with pytest.raises(ValueError):
        h.vm_ns("nat-qemu")
    assert [vm.kind for vm in h.vms] == ["light"] * len(spec.LIGHT_VMS)
