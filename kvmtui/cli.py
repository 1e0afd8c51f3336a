"""Command line entry point: ``kvmtui`` opens the explorer; subcommands are headless clients.

Each subcommand's module is imported only when that subcommand runs, so ``kvmtui inventory``
never pays for Textual and ``kvmtui`` never pays for scapy before a capture starts.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

DEFAULT_LAB_PREFIX = "kvmtui-"

# subcommand -> (module, function); each function takes the parsed args and returns an exit code
_HANDLERS: dict[str, tuple[str, str]] = {
    "app": ("kvmtui.ui.app", "run_app"),
    "inventory": ("kvmtui.commands.inventory", "run_inventory"),
    "path": ("kvmtui.commands.inventory", "run_path"),
    "trace": ("kvmtui.commands.capture", "run_trace"),
    "dhcp": ("kvmtui.commands.capture", "run_dhcp"),
    "lab": ("kvmtui.lab.cli", "run_lab"),
}


def _add_connect(p: argparse.ArgumentParser, top: bool = False) -> None:
    # subcommands suppress the default so `kvmtui -c URI inventory` keeps the top-level value
    p.add_argument(
        "-c",
        "--connect",
        metavar="URI",
        default=None if top else argparse.SUPPRESS,
        help="libvirt connection URI, as for virsh (default: libvirt's own resolution, "
        "LIBVIRT_DEFAULT_URI, then qemu:///system as root)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kvmtui",
        description="A terminal network explorer for KVM hosts. Without a subcommand, opens "
        "the explorer on this host.",
    )
    _add_connect(parser, top=True)
    parser.add_argument("--theme", default=None, help="UI theme: default or presenter")
    parser.set_defaults(command="app")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("inventory", help="print the host model (bridges, FDB, networks, VMs)")
    p.set_defaults(command="inventory")
    _add_connect(p)
    p.add_argument("--json", action="store_true", help="print JSON (a stable interface)")

    p = sub.add_parser("path", help="print the path each NIC of a VM takes out of the host")
    p.set_defaults(command="path")
    _add_connect(p)
    p.add_argument("vm", metavar="VM", help="VM name (or a tap name or a MAC)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("trace", help="capture a VM's packets at every hop of its path")
    p.set_defaults(command="trace")
    _add_connect(p)
    p.add_argument("vm", metavar="VM", help="VM name (or a tap name or a MAC)")
    p.add_argument("--count", "-n", type=int, default=10, help="stop after N packets")
    p.add_argument("--timeout", type=float, default=30.0, help="give up after S seconds")
    p.add_argument("--filter", default=None, metavar="BPF", help="extra BPF filter expression")
    p.add_argument("--pcap", default=None, metavar="FILE", help="also write pcapng to FILE")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("dhcp", help="observe a VM's next DHCP exchange and name its server")
    p.set_defaults(command="dhcp")
    _add_connect(p)
    p.add_argument("vm", metavar="VM", help="VM name (or a tap name or a MAC)")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("lab", help="the built-in lab: the seed's networks in namespaces")
    p.set_defaults(command="lab")
    p.add_argument(
        "--prefix",
        default=os.environ.get("KVMTUI_LAB_PREFIX", DEFAULT_LAB_PREFIX),
        help="name prefix of everything the lab makes (default: %(default)s; "
        "env KVMTUI_LAB_PREFIX)",
    )
    lab = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = lab.add_parser("up", help="build the lab (idempotent)")
    up.add_argument("--no-qemu", action="store_true", help="light VMs only (faster)")
    up.add_argument("--quiet", "-q", action="store_true")
    lab.add_parser("down", help="remove everything the lab made")
    st = lab.add_parser("status", help="say what of the lab is up")
    st.add_argument("--json", action="store_true")
    ex = lab.add_parser("exec", help="run CMD in the lab's KVM host namespace")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    return parser


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    module, func = _HANDLERS[command]
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), func)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _handler(args.command)(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (kvmtui inventory | head): not an error worth a message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: no traceback reaches the user
        if os.environ.get("KVMTUI_DEBUG"):
            raise
        print(
            f"kvmtui: {type(exc).__name__}: {exc} (set KVMTUI_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
