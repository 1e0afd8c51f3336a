"""kvmtui --host over SSH, for real: the lab's sshd in its host namespace, the client in inet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from kvmtui.lab.handle import LabHandle

KVMTUI = os.path.join(os.path.dirname(sys.executable), "kvmtui")


def _lab_exec(lab: LabHandle, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KVMTUI, "lab", "--prefix", lab.prefix, "exec", "--from", "inet", "--", *cmd],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_inventory_over_ssh_is_the_hosts_inventory(lab: LabHandle) -> None:
    t0 = time.monotonic()
    cp = _lab_exec(lab, KVMTUI, "--host", "kvm-host", "inventory", "--json")
    took = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    remote = json.loads(cp.stdout)
    local = lab.run(lab.host_ns, KVMTUI, "-c", lab.uri, "inventory", "--json")
    assert local.returncode == 0, local.stderr
    here = json.loads(local.stdout)
    assert remote["host"] == here["host"]
    assert remote["libvirt_uri"] == lab.uri  # the lab's libvirtd, through sshd's SetEnv
    for key in ("bridges", "networks", "vms"):
        assert [x["name"] for x in remote[key]] == [x["name"] for x in here[key]]
    assert [(p["vm"], p["verdict"]) for p in remote["paths"]] == [
        (p["vm"], p["verdict"]) for p in here["paths"]
    ]
    print(f"\nfirst snapshot over ssh (whole command): {took:.2f} s", file=sys.stderr)


def test_path_over_ssh(lab: LabHandle) -> None:
    cp = _lab_exec(lab, KVMTUI, "--host", "kvm-host", "path", "nat-light", "--json")
    assert cp.returncode == 0, cp.stderr
    assert json.loads(cp.stdout)["paths"]


def test_unreachable_host_one_line_exit_1(lab: LabHandle) -> None:
    # 198.51.100.77 is in the fake Internet and nobody answers on it: ssh times out
    cp = _lab_exec(
        lab, KVMTUI, "--connect-timeout", "1", "--host", "root@198.51.100.77", "inventory",
    )  # fmt: skip
    assert cp.returncode == 1
    assert cp.stderr.count("\n") == 1 and "cannot reach root@198.51.100.77" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_remote_without_kvmtui_says_so(lab: LabHandle) -> None:
    cp = subprocess.run(
        [KVMTUI, "lab", "--prefix", lab.prefix, "exec", "--from", "inet", "--", "env",
         "KVMTUI_REMOTE_COMMAND=kvmtui-not-installed", KVMTUI, "--host", "kvm-host", "inventory"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 1
    assert "kvmtui is not installed there" in cp.stderr and cp.stderr.count("\n") == 1


def test_remote_of_another_version_is_refused(lab: LabHandle, tmp_path: object) -> None:
    # a stand-in for a newer kvmtui on the host (the lab has one kvmtui): it greets with
    # agent protocol 99, as kvmtui.core.agent would after a protocol change
    script = os.path.join(str(tmp_path), "kvmtui-future")
    with open(script, "w") as f:
        f.write('#!/bin/sh\necho \'{"agent": 99, "version": "9.0"}\'\n')
    os.chmod(script, 0o755)
    cp = subprocess.run(
        [KVMTUI, "lab", "--prefix", lab.prefix, "exec", "--from", "inet", "--", "env",
         f"KVMTUI_REMOTE_COMMAND={script}", KVMTUI, "--host", "kvm-host", "inventory"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 1
    assert "runs kvmtui 9.0 (agent protocol 99)" in cp.stderr and cp.stderr.count("\n") == 1


def test_remote_argv_keeps_the_command_and_drops_this_sides_options() -> None:
    from kvmtui.commands.elsewhere import remote_argv

    argv = ["--host", "kvm-a", "--ssh-config=/x", "-c", "qemu:///system", "trace", "web1",
            "--filter", "icmp and host 10.0.0.1", "--pcap", "x.pcapng", "--overwrite"]  # fmt: skip
    assert remote_argv(argv, pcap_to_stdout=True) == [
        "-c", "qemu:///system", "trace", "web1", "--filter", "icmp and host 10.0.0.1",
        "--pcap", "-",
    ]  # fmt: skip
    assert remote_argv(["--host=kvm-a", "dhcp", "web1"], pcap_to_stdout=False) == ["dhcp", "web1"]


def test_capture_commands_on_a_recording_say_so_and_capture_nothing() -> None:
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "proxmox.json")
    for cmd in ("trace", "dhcp", "switch"):
        target = "vmbr0" if cmd == "switch" else "web"
        cp = subprocess.run([KVMTUI, "--replay", fixture, cmd, target], capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
        assert cp.returncode == 2, cp.stderr
        assert "captures live packets; a recording replays the host model" in cp.stderr


def test_trace_over_ssh_captures_there_and_writes_the_pcap_here(lab: LabHandle) -> None:
    """kvmtui --host kvm-host trace: the rows are the lab host's (its tap, bridge and uplink),
    not the machine the command runs on; --pcap FILE is written on this side (the inet
    namespace shares our filesystem) from the remote trace's stream, and tshark reads it."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kvmtui-remote-pcap-") as tmp:
        pcap = os.path.join(tmp, "remote.pcapng")
        cp = _lab_exec(lab, KVMTUI, "--host", "kvm-host", "trace", "nat-light", "--count", "2",
                       "--json", "--filter", "icmp", "--timeout", "30", "--pcap", pcap,
                       timeout=120)  # fmt: skip
        assert cp.returncode == 0, cp.stderr
        rows = [json.loads(ln) for ln in cp.stdout.splitlines() if ln.startswith("{")]
        # (with --pcap - the remote prints rows on stderr; they come through on ours)
        rows += [json.loads(ln) for ln in cp.stderr.splitlines() if ln.startswith("{")]
        assert len(rows) >= 2 and all(r["proto"] == "icmp" for r in rows)
        assert any([h["dev"] for h in r["hops"]][:2] == ["vnet0", "virbr0"] for r in rows)
        assert f"the pcapng from kvm-host is in {pcap}" in cp.stderr
        t = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-e", "frame.interface_name"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        assert t.returncode == 0, t.stderr
        assert "vnet0" in t.stdout.split()
        assert os.stat(pcap).st_mode & 0o077 == 0
