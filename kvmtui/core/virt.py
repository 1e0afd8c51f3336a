"""The libvirt reader: networks (mode, bridge, addresses, DHCP ranges and hosts, leases) and
domains (state, NICs, guest-agent addresses), through libvirt-python and the XML it returns.

``read_virt(uri)`` never raises: a missing module or an unreachable daemon comes back as an
empty ``VirtState`` with one ``Problem`` that says what to do. The connection is read-only
(``openReadOnly``): kvmtui never changes libvirt's state.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kvmtui.core.model import (
    DhcpHost,
    DhcpRange,
    Lease,
    NetAddress,
    NetMode,
    Network,
    Problem,
    Vm,
    VmNic,
)

DOMAIN_STATES = {
    0: "unknown",  # VIR_DOMAIN_NOSTATE
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shut off",
    6: "crashed",
    7: "pmsuspended",
}

_MODES: dict[str, NetMode] = {
    "nat": "nat",
    "route": "route",
    "open": "open",
    "bridge": "bridge",
    "private": "private",
    "vepa": "vepa",
    "passthrough": "passthrough",
    "hostdev": "hostdev",
}


@dataclass(frozen=True, slots=True)
class VirtState:
    """What libvirt says: networks and domains, plus guest-agent addresses by MAC."""

    uri: str | None = None
    networks: tuple[Network, ...] = ()
    domains: tuple[Vm, ...] = ()
    agent_ips: tuple[tuple[str, str], ...] = ()  # (mac, ip) from the guest agent, if any
    problems: tuple[Problem, ...] = ()
    connected: bool = False


_quiet_lock = threading.Lock()
_quiet_done = False


def _libvirt() -> Any:
    """Import libvirt and silence its default error printer (it writes to stderr)."""
    global _quiet_done
    import libvirt

    with _quiet_lock:
        if not _quiet_done:
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
            _quiet_done = True
    return libvirt


def describe_uri(uri: str | None) -> str:
    return uri if uri else "libvirt's default URI"


def connect_problem(uri: str | None, exc: BaseException) -> Problem:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = msg.removeprefix("libvirt: ")
    hint = "is libvirtd running? Try -c URI"
    low = msg.lower()
    if os.geteuid() != 0 and ("system bus" in low or "polkit" in low):
        hint = "not root: run as root or as a member of the libvirt group"
    elif "permission denied" in low or "authentication" in low or "access denied" in low:
        hint = "run as root or as a member of the libvirt group, or try -c qemu:///session"
    return Problem("libvirt", f"libvirt: cannot connect to {describe_uri(uri)} ({msg}): {hint}")


#: the deadline of a libvirt connect, seconds (the CLI's --connect-timeout sets it)
CONNECT_TIMEOUT_S = 5.0
#: called once with a line when a connect takes more than a second (the CLI prints it)
on_slow_connect: Callable[[str], None] | None = None


class ConnectTimeout(Exception):
    """libvirt did not answer a connect within the deadline."""


def set_connect_timeout(seconds: float, on_slow: Callable[[str], None] | None = None) -> None:
    """--connect-timeout: the connect's deadline, and twice that for each read after it."""
    global CONNECT_TIMEOUT_S, READ_TIMEOUT_S, on_slow_connect
    CONNECT_TIMEOUT_S = seconds
    READ_TIMEOUT_S = 2 * seconds
    on_slow_connect = on_slow


def open_readonly(uri: str | None, timeout: float | None = None) -> Any:
    """``libvirt.openReadOnly(uri)`` under a deadline. The connect runs in a thread of its own:
    a libvirtd (or a TCP peer) that accepts and never answers blocked for minutes, and Ctrl-C
    during the C call came out as SystemError. Here the caller waits on an event (Ctrl-C works)
    and gets :class:`ConnectTimeout` at the deadline; the stuck thread is a daemon and its
    connection, if it ever opens, is closed."""
    libvirt = _libvirt()
    limit = CONNECT_TIMEOUT_S if timeout is None else timeout
    done = threading.Event()
    box: dict[str, Any] = {}
    abandoned = threading.Event()

    def connect() -> None:
        try:
            box["conn"] = libvirt.openReadOnly(uri)
        except BaseException as exc:  # handed to the caller
            box["exc"] = exc
        done.set()
        if abandoned.is_set() and "conn" in box:
            with contextlib.suppress(Exception):
                box["conn"].close()

    threading.Thread(target=connect, name="kvmtui-libvirt-connect", daemon=True).start()
    said = False
    t0 = time.monotonic()
    while not done.wait(0.1):
        waited = time.monotonic() - t0
        if waited >= 1.0 and not said and on_slow_connect is not None:
            said = True
            on_slow_connect(f"connecting to {describe_uri(uri)} ...")
        if waited >= limit:
            abandoned.set()
            raise ConnectTimeout(f"no answer in {limit:g} s, --connect-timeout")
    if "exc" in box:
        raise box["exc"]
    return box["conn"]


#: the deadline of one read of networks, domains and leases after the connect, seconds: a
#: libvirtd that hangs after it accepted (stopped, deadlocked) must not hang kvmtui
READ_TIMEOUT_S = 10.0


class ReadTimeout(Exception):
    """libvirt stopped answering in the middle of a read."""


def under_deadline(fn: Callable[[], Any], limit: float, what: str) -> Any:
    """``fn()`` in a daemon thread; :class:`ReadTimeout` if it has not returned in ``limit``
    seconds (the thread is abandoned: a libvirt call cannot be cancelled). Ctrl-C works
    meanwhile: the caller waits on an event, not in the C call."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["exc"] = exc
        done.set()

    threading.Thread(target=run, name="kvmtui-libvirt-call", daemon=True).start()
    if not done.wait(limit):
        raise ReadTimeout(f"no answer in {limit:g} s while {what}")
    if "exc" in box:
        raise box["exc"]
    return box["value"]


def read_virt(uri: str | None = None, conn: Any = None, *, leases: bool = True) -> VirtState:
    """Read networks and domains. Pass ``conn`` to reuse an open connection. The read after
    the connect runs under ``READ_TIMEOUT_S``: a libvirtd that stops answering gives a problem
    line, not a hang (an abandoned connection is not closed: closing it would block too)."""
    try:
        libvirt = _libvirt()
    except ImportError:
        return VirtState(
            uri=uri,
            problems=(
                Problem(
                    "libvirt",
                    "libvirt: the Python module 'libvirt' is not installed: "
                    "pip install libvirt-python (networks and VMs are not shown)",
                ),
            ),
        )
    own = conn is None
    if own:
        try:
            conn = open_readonly(uri)
        except (libvirt.libvirtError, ConnectTimeout) as exc:
            return VirtState(uri=uri, problems=(connect_problem(uri, exc),))
    try:
        state: VirtState = under_deadline(
            lambda: _read_all(libvirt, uri, conn, leases), READ_TIMEOUT_S,
            "reading networks and VMs (a hung libvirtd?)",
        )  # fmt: skip
    except ReadTimeout as exc:
        own = False  # the stuck thread still uses it
        return VirtState(
            uri=uri, problems=(Problem("libvirt", f"libvirt: {describe_uri(uri)}: {exc}"),)
        )
    finally:
        if own:
            with contextlib.suppress(Exception):
                conn.close()
    return state


def _read_all(libvirt: Any, uri: str | None, conn: Any, leases: bool) -> VirtState:
    problems: list[Problem] = []
    try:
        try:
            real_uri = conn.getURI()
        except libvirt.libvirtError:
            real_uri = uri
        if uri is None and os.geteuid() != 0 and str(real_uri).startswith("qemu:///session"):
            problems.append(
                Problem(
                    "libvirt",
                    f"libvirt: not root, so libvirt chose {real_uri} (this user's own VMs "
                    "only): for the host's VMs and networks run as root or use "
                    "-c qemu:///system",
                )
            )
        networks = _read_networks(libvirt, conn, problems, leases)
        domains, agent = _read_domains(libvirt, conn, problems)
        # which domains sit on each network
        by_net: dict[str, list[str]] = {}
        for vm in domains:
            for nic in vm.nics:
                if nic.network and vm.name not in by_net.setdefault(nic.network, []):
                    by_net[nic.network].append(vm.name)
        networks = tuple(replace(n, vms=tuple(by_net.get(n.name, ()))) for n in networks)
        return VirtState(
            uri=real_uri,
            networks=networks,
            domains=domains,
            agent_ips=agent,
            problems=tuple(problems),
            connected=True,
        )
    except libvirt.libvirtError as exc:
        return VirtState(uri=uri, problems=(connect_problem(uri, exc),))


# --- networks --------------------------------------------------------------------------------


def _read_networks(
    libvirt: Any, conn: Any, problems: list[Problem], leases: bool
) -> tuple[Network, ...]:
    out: list[Network] = []
    for net in conn.listAllNetworks():
        try:
            xml = net.XMLDesc(0)
            active = bool(net.isActive())
            autostart = bool(net.autostart())
        except libvirt.libvirtError:
            continue  # vanished between list and read
        n = parse_network_xml(xml, active=active, autostart=autostart)
        if leases and active and n.addresses:
            try:
                raw = net.DHCPLeases()
            except libvirt.libvirtError as exc:
                if "not supported" not in str(exc):
                    problems.append(
                        Problem("libvirt", f"libvirt: cannot read DHCP leases of {n.name}: {exc}")
                    )
                raw = []
            n = replace(n, leases=tuple(_lease(x) for x in raw))
        out.append(n)
    out.sort(key=lambda n: n.name)
    return tuple(out)


def _lease(x: dict[str, Any]) -> Lease:
    expiry = x.get("expirytime")
    return Lease(
        mac=str(x.get("mac", "")).lower(),
        ip=str(x.get("ipaddr", "")),
        prefix=int(x["prefix"]) if x.get("prefix") is not None else None,
        hostname=x.get("hostname") or None,
        expiry=int(expiry) if expiry else None,
        client_id=x.get("clientid") or None,
    )


def _prefix_of(ip: ET.Element) -> int:
    if ip.get("prefix"):
        return int(ip.get("prefix", "0"))
    mask = ip.get("netmask")
    if mask:
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    return 64 if ip.get("family") == "ipv6" else 24


def parse_network_xml(xml: str, *, active: bool = True, autostart: bool = False) -> Network:
    root = ET.fromstring(xml)
    fwd = root.find("forward")
    mode: NetMode = "isolated" if fwd is None else _MODES.get(fwd.get("mode", "nat"), "unknown")
    forward_dev = None
    if fwd is not None:
        forward_dev = fwd.get("dev")
        if forward_dev is None:
            iface = fwd.find("interface")
            pf = fwd.find("pf")
            if iface is not None:
                forward_dev = iface.get("dev")
            elif pf is not None:
                forward_dev = pf.get("dev")
    br = root.find("bridge")
    addrs: list[NetAddress] = []
    for ip in root.findall("ip"):
        dhcp = ip.find("dhcp")
        ranges: tuple[DhcpRange, ...] = ()
        hosts: tuple[DhcpHost, ...] = ()
        if dhcp is not None:
            ranges = tuple(
                DhcpRange(r.get("start", ""), r.get("end", "")) for r in dhcp.findall("range")
            )
            hosts = tuple(
                DhcpHost(
                    mac=(h.get("mac") or "").lower() or None,
                    ip=h.get("ip", ""),
                    name=h.get("name"),
                )
                for h in dhcp.findall("host")
            )
        addrs.append(
            NetAddress(
                address=ip.get("address", ""),
                prefix=_prefix_of(ip),
                family=ip.get("family", "ipv4"),
                ranges=ranges,
                hosts=hosts,
            )
        )
    return Network(
        name=root.findtext("name", ""),
        uuid=root.findtext("uuid", ""),
        mode=mode,
        bridge=br.get("name") if br is not None else None,
        active=active,
        autostart=autostart,
        addresses=tuple(addrs),
        forward_dev=forward_dev,
    )


# --- domains ---------------------------------------------------------------------------------


def _read_domains(
    libvirt: Any, conn: Any, problems: list[Problem]
) -> tuple[tuple[Vm, ...], tuple[tuple[str, str], ...]]:
    out: list[Vm] = []
    agent: list[tuple[str, str]] = []
    for dom in conn.listAllDomains():
        try:
            state_code = dom.state()[0]
            xml = dom.XMLDesc(0)
            dom_id = dom.ID()
        except libvirt.libvirtError:
            continue
        state = DOMAIN_STATES.get(state_code, "unknown")
        vm = parse_domain_xml(xml, state=state, domain_id=dom_id if dom_id >= 0 else None)
        out.append(vm)
        if state == "running":
            agent.extend(_agent_addresses(libvirt, dom))
    out.sort(key=lambda v: v.name)
    return tuple(out), tuple(agent)


def _agent_addresses(libvirt: Any, dom: Any) -> list[tuple[str, str]]:
    """Guest-agent addresses (optional: needs a read-write connection and an agent)."""
    src = getattr(libvirt, "VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT", 1)
    try:
        ifaces = dom.interfaceAddresses(src, 0)
    except Exception:
        return []
    res: list[tuple[str, str]] = []
    for info in (ifaces or {}).values():
        mac = str(info.get("hwaddr") or "").lower()
        for a in info.get("addrs") or []:
            if mac and a.get("type") == 0 and a.get("addr") and not a["addr"].startswith("127."):
                res.append((mac, a["addr"]))
    return res


def parse_domain_xml(xml: str, *, state: str, domain_id: int | None = None) -> Vm:
    root = ET.fromstring(xml)
    running = state in ("running", "paused", "blocked", "pmsuspended")
    nics: list[VmNic] = []
    devices = root.find("devices")
    for iface in devices.findall("interface") if devices is not None else []:
        itype = iface.get("type", "")
        mac_el = iface.find("mac")
        mac = (mac_el.get("address", "") if mac_el is not None else "").lower()
        src = iface.find("source")
        network = src.get("network") if src is not None else None
        bridge = src.get("bridge") if src is not None else None
        if itype == "direct" and src is not None:
            bridge = None
        target = iface.find("target")
        tap = target.get("dev") if (target is not None and running) else None
        model_el = iface.find("model")
        nics.append(
            VmNic(
                mac=mac,
                type=itype,
                model=model_el.get("type") if model_el is not None else None,
                network=network,
                bridge=bridge,
                tap=tap,
            )
        )
    return Vm(
        name=root.findtext("name", ""),
        uuid=root.findtext("uuid", ""),
        state=state,
        nics=tuple(nics),
        domain_id=domain_id,
        kind="libvirt",
    )
