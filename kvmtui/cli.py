"""Command line entry point: ``kvmtui`` opens the explorer; subcommands are headless clients.

Each subcommand's module is imported only when that subcommand runs, so ``kvmtui inventory``
never pays for Textual and ``kvmtui`` never pays for scapy before a capture starts.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

DEFAULT_LAB_PREFIX = "kvmtui-"

# subcommand -> (module, function); each function takes the parsed args and returns an exit code
_HANDLERS: dict[str, tuple[str, str]] = {
    "app": ("kvmtui.ui.launch", "run"),
    "inventory": ("kvmtui.commands.inventory", "run_inventory"),
    "path": ("kvmtui.commands.inventory", "run_path"),
    "trace": ("kvmtui.commands.capture", "run_trace"),
    "dhcp": ("kvmtui.commands.dhcp", "run_dhcp"),
    "lab": ("kvmtui.lab.cli", "run_lab"),
    "doctor": ("kvmtui.commands.doctor", "run_doctor"),
    "switch": ("kvmtui.commands.switch", "run_switch"),
    "serve": ("kvmtui.commands.serve", "run_serve"),
    "record": ("kvmtui.commands.record", "run_record"),
    "agent": ("kvmtui.core.agent", "run_agent"),
}


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (``--count 0`` and ``-1`` are refused)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_short(text)!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive (give 1 or more)")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0 (``0``, ``-1``, ``nan``, ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_short(text)!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{_short(text)!r} is not a positive finite number")
    return value


def _short(text: str, limit: int = 40) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=5.0 if top else argparse.SUPPRESS,
        metavar="S",
        help="deadline for a libvirt connect, in seconds (default: 5)",
    )


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit code 2 (not the whole usage text)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kvmtui",
        description="A terminal network explorer for KVM hosts. Without a subcommand, opens "
        "the explorer on this host.",
    )
    _add_connect(parser, top=True)
    parser.add_argument("--theme", default=None, help="UI theme: default or presenter")
    parser.add_argument(
        "--vm", default=None, metavar="VM", help="open the explorer with this VM selected"
    )
    parser.add_argument(
        "--capture", action="store_true", help="with --vm: start that VM's capture at once"
    )
    parser.add_argument(
        "--lang", choices=("en", "vi"), default=None, help="language of the lessons (en, vi)"
    )
    parser.add_argument(
        "--replay",
        default=None,
        metavar="FILE",
        help="read a recording (kvmtui record) instead of this host: no root, no libvirt",
    )
    parser.add_argument(
        "--host",
        dest="remote",
        action="append",
        default=None,
        metavar="[USER@]HOST",
        help="explore a remote KVM host over SSH (repeat for a host picker)",
    )
    parser.add_argument(
        "--ssh-config", default=None, metavar="FILE", help="an extra ssh_config for --host"
    )
    parser.set_defaults(command="app")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("inventory", help="print the host model (bridges, FDB, networks, VMs)")
    p.set_defaults(command="inventory")
    _add_connect(p)
    p.add_argument("--json", action="store_true", help="print JSON (a stable interface)")
    p.add_argument(
        "--listen",
        type=positive_float,
        default=None,
        metavar="S",
        help="listen S seconds to ARP and DHCP on every bridge first (IPs seen on the wire)",
    )

    p = sub.add_parser("path", help="print the path each NIC of a VM takes out of the host")
    p.set_defaults(command="path")
    _add_connect(p)
    p.add_argument("vm", metavar="VM", help="VM name (or a tap name or a MAC)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("trace", help="capture a VM's packets at every hop of its path")
    p.set_defaults(command="trace")
    _add_connect(p)
    p.add_argument("vm", metavar="VM", help="VM name (or a tap name or a MAC)")
    p.add_argument("--count", "-n", type=positive_int, default=10, help="stop after N packets")
    p.add_argument("--timeout", type=positive_float, default=30.0, help="give up after S seconds")
    p.add_argument("--filter", default=None, metavar="BPF", help="extra BPF filter expression")
    p.add_argument(
        "--pcap",
        default=None,
        metavar="FILE",
        help="also write every frame of every hop to FILE as pcapng ('-': standard output)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --pcap file")
    p.add_argument(
        "--pcap-max", type=positive_float, default=None, metavar="MB", help="rotate at MB (-C)"
    )
    p.add_argument(
        "--pcap-files", type=positive_int, default=None, metavar="N", help="keep N files (-W)"
    )
    p.add_argument("--stats", action="store_true", help="per-hop and per-flow counts at the end")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("dhcp", help="observe a VM's next DHCP exchange and name its server")
    p.set_defaults(command="dhcp")
    _add_connect(p)
    p.add_argument("vm", metavar="VM", help="VM name (or a tap name or a MAC)")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        help="give up after S seconds (default: %(default)s)",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("doctor", help="say what is wrong with a VM's network, ranked, with fixes")
    p.set_defaults(command="doctor")
    _add_connect(p)
    p.add_argument("vm", metavar="VM", nargs="?", default=None, help="one VM (default: every VM)")
    p.add_argument(
        "--watch",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="also watch the path for S seconds: DHCP, ARP, hops, and the kernel's drop reasons",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("switch", help="watch a bridge learn MACs and forward frames, port by port")
    p.set_defaults(command="switch")
    _add_connect(p)
    p.add_argument("bridge", metavar="BRIDGE")
    p.add_argument("--count", "-n", type=positive_int, default=20, help="stop after N frames")
    p.add_argument("--timeout", type=positive_float, default=30.0, help="give up after S seconds")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("serve", help="serve the explorer to a web browser (textual-serve)")
    p.set_defaults(command="serve")
    _add_connect(p)
    p.add_argument("--port", type=positive_int, default=8000, help="TCP port (default: 8000)")
    p.add_argument(
        "--host",
        dest="bind",
        default="127.0.0.1",
        metavar="ADDR",
        help="address to bind (default: 127.0.0.1, this machine only)",
    )

    p = sub.add_parser("agent")  # hidden: what `kvmtui --host HOST` runs there over SSH
    p.set_defaults(command="agent")
    _add_connect(p)
    p.add_argument("--once", action="store_true")

    p = sub.add_parser("record", help="record the host model, its changes and a VM's packets")
    p.set_defaults(command="record")
    _add_connect(p)
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--seconds", type=positive_float, default=10.0, help="how long (default: %(default)s)"
    )
    p.add_argument("--vm", dest="record_vm", default=None, metavar="VM", help="capture this VM")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")

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
    ex.add_argument(
        "--from",
        dest="from_ns",
        default="host",
        choices=("host", "inet", "lan"),
        help="the lab namespace to run in (inet: the fake Internet, with the lab's ssh config)",
    )
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    br = lab.add_parser("break", help="break the lab the way an admin would (see --list)")
    br.add_argument("scenario", nargs="?", default=None, metavar="SCENARIO")
    br.add_argument("vm", nargs="?", default=None, metavar="VM")
    br.add_argument("--list", action="store_true", help="list the scenarios")
    lab.add_parser("fix", help="undo every break")
    le = lab.add_parser("lesson", help="list the seed's lessons, or run one")
    le.add_argument("name", nargs="?", default=None, metavar="NAME")
    le.add_argument("--lang", choices=("en", "vi"), default="en")
    return parser


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    module, func = _HANDLERS[command]
    handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), func)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from kvmtui.core.virt import set_connect_timeout

    # the explorer says "reading the host…" itself; a command says it on stderr after 1 s
    slow = None if args.command == "app" else (lambda m: print(f"kvmtui: {m}", file=sys.stderr))
    set_connect_timeout(float(getattr(args, "connect_timeout", None) or 5.0), slow)
    try:
        from kvmtui.commands.elsewhere import run_elsewhere

        # trace, dhcp and switch capture on the host --host names, never here by mistake
        elsewhere = run_elsewhere(args, list(sys.argv[1:] if argv is None else argv))
        if elsewhere is not None:
            return elsewhere
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
