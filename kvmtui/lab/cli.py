"""``kvmtui lab up | down | status | exec``: the command-line face of the lab builder."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from kvmtui.lab import spec
from kvmtui.lab.procs import LabError


def run_lab(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except LabError as exc:
        print(f"kvmtui lab: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    prefix: str = args.prefix
    cmd = args.lab_command
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (namespaces, bridges, libvirtd): run it with sudo or as root"
        )
    if cmd == "up":
        from kvmtui.lab.builder import Lab

        t0 = time.monotonic()
        Lab(prefix).up(want_qemu=not args.no_qemu, quiet=args.quiet)
        if not args.quiet:
            print(f"lab {prefix}: ready in {time.monotonic() - t0:.1f} s")
        return 0
    if cmd == "down":
        from kvmtui.lab.builder import Lab

        t0 = time.monotonic()
        if not Lab(prefix).down():
            print(f"lab {prefix}: nothing to remove")
        else:
            print(f"lab {prefix}: down in {time.monotonic() - t0:.1f} s")
        return 0
    if cmd == "status":
        from kvmtui.lab.status import format_status, lab_status

        st = lab_status(prefix)
        if args.json:
            print(json.dumps(st, indent=2, sort_keys=True))
        else:
            print(format_status(st))
        return 0 if st["up"] else 3
    if cmd == "exec":
        return _exec(prefix, list(args.cmd), getattr(args, "from_ns", "host"))
    if cmd == "break":
        from kvmtui.lab.breaks import run_break

        return int(run_break(prefix, args))
    if cmd == "fix":
        from kvmtui.lab.breaks import run_fix

        return int(run_fix(prefix, args))
    if cmd == "lesson":
        from kvmtui.lab.lessons import run_lesson

        return int(run_lesson(prefix, args))
    raise LabError(f"unknown lab action {cmd!r}")


def _exec(prefix: str, argv: list[str], from_ns: str = "host") -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise LabError("lab exec needs a command: kvmtui lab exec -- CMD ARGS...")
    if os.geteuid() != 0:
        raise LabError("the lab needs root: run it with sudo or as root")
    host = spec.ns_name(prefix, spec.NS_HOST)
    target = spec.ns_name(prefix, {"inet": spec.NS_INET, "lan": spec.NS_LAN}.get(from_ns, "host"))
    if not os.path.exists(f"/run/netns/{host}"):
        raise LabError(f"the lab {prefix} is not up (kvmtui lab --prefix {prefix} up)")
    env = dict(os.environ)
    env["LIBVIRT_DEFAULT_URI"] = spec.libvirt_uri(prefix)
    env["KVMTUI_LAB_PREFIX"] = prefix
    if from_ns == "inet":  # `kvmtui --host kvm-host` reaches the lab's host (kvmtui.lab.sshd)
        from kvmtui.lab.sshd import client_config

        env["KVMTUI_SSH_CONFIG"] = client_config(prefix)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe("ip", ["ip", "netns", "exec", target, *argv], env)
    except OSError as exc:
        raise LabError(f"cannot run ip netns exec: {exc}") from None
    return 127  # not reached
