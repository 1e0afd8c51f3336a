"""An OpenSSH server in the lab's KVM host namespace, so ``kvmtui --host kvm-host`` is tested
for real from the fake Internet namespace.

Everything lives in ``<state_dir>/ssh`` (nothing in /root/.ssh): a host key, a client key pair,
``authorized_keys``, ``sshd_config``, and ``ssh_config`` with ``Host kvm-host`` for the client.
sshd listens only on the host's uplink address (spec.UPLINK_IP, port 22) inside the host
namespace; the session gets the lab's LIBVIRT_DEFAULT_URI and this kvmtui on its PATH.
``kvmtui lab exec --from inet`` sets KVMTUI_SSH_CONFIG to the client config.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from kvmtui.core.procs import pid_alive
from kvmtui.lab import spec

SSHD = "/usr/sbin/sshd"
HOST_ALIAS = "kvm-host"


def ssh_dir(prefix: str) -> str:
    return os.path.join(spec.state_dir(prefix), "ssh")


def client_config(prefix: str) -> str:
    return os.path.join(ssh_dir(prefix), "ssh_config")


def _keygen(path: str) -> None:
    if not os.path.exists(path):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvmtui-lab", "-f", path],
            check=True,
            capture_output=True,
            timeout=30,
        )


def _write(path: str, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _pid(prefix: str) -> int | None:
    try:
        with open(os.path.join(ssh_dir(prefix), "sshd.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def start(prefix: str) -> None:
    """Write the keys and configs and start sshd in the host namespace (idempotent)."""
    d = ssh_dir(prefix)
    os.makedirs(d, mode=0o700, exist_ok=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    _keygen(os.path.join(d, "host_ed25519"))
    _keygen(os.path.join(d, "id_ed25519"))
    with open(os.path.join(d, "id_ed25519.pub")) as f:
        _write(os.path.join(d, "authorized_keys"), f.read())
    with open(os.path.join(d, "host_ed25519.pub")) as f:
        hostkey = " ".join(f.read().split()[:2])
    _write(os.path.join(d, "known_hosts"), f"{HOST_ALIAS} {hostkey}\n")
    bindir = os.path.dirname(os.path.abspath(sys.executable))
    path = f"{bindir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    _write(
        os.path.join(d, "sshd_config"),
        f"ListenAddress {spec.UPLINK_IP}:22\n"
        f"HostKey {d}/host_ed25519\n"
        f"AuthorizedKeysFile {d}/authorized_keys\n"
        f"PidFile {d}/sshd.pid\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nX11Forwarding no\n"
        "AllowTcpForwarding no\nPrintMotd no\n"
        f"SetEnv LIBVIRT_DEFAULT_URI={spec.libvirt_uri(prefix)} PATH={path}\n",
    )
    _write(
        client_config(prefix),
        f"Host {HOST_ALIAS}\n  HostName {spec.UPLINK_IP}\n  User root\n"
        f"  IdentityFile {d}/id_ed25519\n  IdentitiesOnly yes\n  HostKeyAlias {HOST_ALIAS}\n"
        f"  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n",
        0o644,
    )
    pid = _pid(prefix)
    if pid is not None and pid_alive(pid):
        return
    host = spec.ns_name(prefix, spec.NS_HOST)
    cp = subprocess.run(
        ["ip", "netns", "exec", host, SSHD, "-f", os.path.join(d, "sshd_config"),
         "-E", os.path.join(d, "sshd.log")],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if cp.returncode != 0:
        raise RuntimeError(f"sshd did not start: {cp.stderr.strip()[-300:]}")
    deadline = time.monotonic() + 10
    while _pid(prefix) is None and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(prefix: str) -> None:
    """Stop the lab's sshd (by its recorded pid)."""
    pid = _pid(prefix)
    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(ssh_dir(prefix), "sshd.pid"))
