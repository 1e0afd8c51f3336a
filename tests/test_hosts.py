"""Which host a command reads: several ``--host`` are for the explorer's picker; a command given
more than one says so in one line, exit 2, before any SSH."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from kvmtui.core.hosts import HostUnavailable, open_source


def test_open_source_refuses_several_hosts() -> None:
    with pytest.raises(HostUnavailable, match="--host given 2 times") as raised:
        open_source(argparse.Namespace(remote=["kvm-a", "kvm-b"], replay=None))
    assert raised.value.code == 2


def test_a_command_with_two_hosts_is_one_line_exit_2() -> None:
    cp = subprocess.run(
        [sys.executable, "-m", "kvmtui", "--host", "kvm-a", "--host", "kvm-b", "inventory"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cp.returncode == 2, cp.stderr
    assert cp.stderr.strip().splitlines() == [
        "kvmtui: --host given 2 times: a command reads one host "
        "(the explorer opens a host picker for several)"
    ]
