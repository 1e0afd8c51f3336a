"""``trace``, ``dhcp`` and ``switch`` capture packets where the VM is: never this host when the
command names another one.

- ``--host [USER@]HOST``: the same command runs there, through the user's OpenSSH (the same
  ssh options as the remote explorer, :class:`kvmtui.core.remote.RemoteHost`), its rows on this
  terminal; ``--pcap FILE`` is written HERE (checked and created before anything runs, with the
  same safety as a local export) from the remote trace's ``--pcap -`` stream. Ctrl-C or a dropped
  connection ends the remote trace as SIGHUP does, with its summary.
- ``--replay FILE``: a recording replays the host model (inventory, path, doctor, the explorer);
  capturing live from it makes no sense, so one line says so, exit 2.

Before this, these three commands ignored ``--host`` and ``--replay`` and captured on the local
host: the wrong host's packets, without a word.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

CAPTURE_COMMANDS = ("trace", "dhcp", "switch")
_LOCAL_ONLY = {"--host": 1, "--ssh-config": 1, "--overwrite": 0}


def remote_argv(argv: Sequence[str], pcap_to_stdout: bool) -> list[str]:
    """``argv`` for the remote kvmtui: without this side's --host/--ssh-config/--overwrite, and
    ``--pcap FILE`` as ``--pcap -`` when the file is written here."""
    out: list[str] = []
    skip = 0
    for a in argv:
        if skip:
            skip -= 1
            continue
        name, eq, _value = a.partition("=")
        if name in _LOCAL_ONLY:
            skip = 0 if eq else _LOCAL_ONLY[name]
            continue
        if pcap_to_stdout and name == "--pcap":
            out += ["--pcap", "-"]
            skip = 0 if eq else 1
            continue
        out.append(a)
    return out


def run_elsewhere(args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """Run a capture command where it belongs; None when it is for this host."""
    if getattr(args, "command", None) not in CAPTURE_COMMANDS:
        return None
    if getattr(args, "replay", None):
        print(
            f"kvmtui: {args.command} captures live packets; a recording replays the host model "
            "(inventory, path, doctor, the explorer) and its frames open in Wireshark",
            file=sys.stderr,
        )
        return 2
    remote = getattr(args, "remote", None)
    if not remote:
        return None
    if len(remote) > 1:
        print(f"kvmtui: --host given {len(remote)} times: {args.command} captures on one host",
              file=sys.stderr)  # fmt: skip
        return 2
    return _over_ssh(args, str(remote[0]), argv)


def _over_ssh(args: argparse.Namespace, target: str, argv: Sequence[str]) -> int:
    from kvmtui.capture.pcapng import ExportRefused, check_export_path, open_export
    from kvmtui.core.remote import RemoteHost
    from kvmtui.core.source import HostUnavailable

    pcap = getattr(args, "pcap", None)
    local_file = bool(pcap) and pcap != "-"
    if local_file and getattr(args, "pcap_max", None):
        print("kvmtui: --pcap-max with --host: rotation is not built for a file written here",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        host = RemoteHost(
            target, ssh_config=getattr(args, "ssh_config", None),
            connect_timeout=float(getattr(args, "connect_timeout", None) or 5.0),
        )  # fmt: skip
    except HostUnavailable as exc:
        print(f"kvmtui: {exc}", file=sys.stderr)
        return exc.code
    sink = None
    if local_file:
        try:
            check_export_path(str(pcap), bool(getattr(args, "overwrite", False)))
            sink = open_export(str(pcap), bool(getattr(args, "overwrite", False)))
        except (ExportRefused, OSError) as exc:
            print(f"kvmtui: {exc}", file=sys.stderr)
            return 2
    cmd = host.ssh_command(remote_argv(argv, pcap_to_stdout=local_file))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=sink or None)
    except FileNotFoundError:
        print("kvmtui: ssh not found: install OpenSSH's client for --host", file=sys.stderr)
        return 1
    try:
        rc = proc.wait()
    except KeyboardInterrupt:  # ssh got the Ctrl-C too: the remote trace ends with SIGHUP
        rc = proc.wait()
    finally:
        if sink is not None:
            sink.close()
        host.close()
    if rc == 255:
        print(f"kvmtui: cannot reach {target} over ssh (exit 255)", file=sys.stderr)
        return 1
    if rc == 127:
        print(f"kvmtui: {target}: kvmtui is not installed there (or not on its PATH)",
              file=sys.stderr)  # fmt: skip
        return 1
    if local_file:
        print(f"kvmtui: the pcapng from {target} is in {pcap}", file=sys.stderr)
    return rc
