"""The command line: every subcommand parses, and errors never show a traceback."""

from __future__ import annotations

import subprocess
import sys

from kvmtui.cli import build_parser


def test_subcommands_parse() -> None:
    p = build_parser()
    assert p.parse_args([]).command == "app"
    args = p.parse_args(["-c", "test:///default"])
    assert (args.command, args.connect) == ("app", "test:///default")
    args = p.parse_args(["inventory", "--json", "-c", "qemu:///system"])
    assert (args.command, args.json, args.connect) == ("inventory", True, "qemu:///system")
    args = p.parse_args(["trace", "web1", "--count", "5", "--json"])
    assert (args.vm, args.count, args.json) == ("web1", 5, True)
    args = p.parse_args(["lab", "--prefix", "x-", "up", "--no-qemu"])
    assert (args.prefix, args.lab_command, args.no_qemu) == ("x-", "up", True)
    args = p.parse_args(["lab", "exec", "--", "virsh", "net-list"])
    assert args.cmd[-2:] == ["virsh", "net-list"]


def test_unknown_subcommand_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kvmtui", "frobnicate"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
    assert "Traceback" not in out.stderr


def test_connect_before_or_after_the_subcommand() -> None:
    p = build_parser()
    assert p.parse_args(["-c", "test:///default", "inventory"]).connect == "test:///default"
    assert p.parse_args(["inventory", "-c", "test:///default"]).connect == "test:///default"
    assert p.parse_args(["inventory"]).connect is None
