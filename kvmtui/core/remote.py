"""A KVM host over SSH: ``kvmtui --host [USER@]HOST`` runs ``kvmtui agent`` there through the
user's OpenSSH (their ssh_config, keys and agent; ``--ssh-config FILE`` or KVMTUI_SSH_CONFIG
adds a config read before the user's own) and reads its JSON lines (:mod:`kvmtui.core.agent`).
Needs only kvmtui installed on the remote host.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from kvmtui.core.agent import PROTOCOL
from kvmtui.core.jsondecode import DecodeError, decode_snapshot
from kvmtui.core.model import HostSnapshot, LinkStats
from kvmtui.core.source import HostUnavailable


class RemoteHost:
    """A :class:`~kvmtui.core.source.SnapshotSource` over ``ssh HOST kvmtui agent``."""

    def __init__(
        self,
        target: str,
        ssh_config: str | None = None,
        connect_timeout: float = 5.0,
        uri: str | None = None,
    ) -> None:
        self.target = target
        self.ssh_config = ssh_config or os.environ.get("KVMTUI_SSH_CONFIG") or None
        self.connect_timeout = connect_timeout
        self.uri = uri
        # the program to run there (KVMTUI_REMOTE_COMMAND: e.g. a venv's kvmtui off the PATH)
        self.command = os.environ.get("KVMTUI_REMOTE_COMMAND") or "kvmtui"
        self._last: HostSnapshot | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if target.startswith("-") or not target.strip():
            raise HostUnavailable(f"--host {target[:60]!r}: not a host name", 2)

    def ssh_command(self, kvmtui_args: Sequence[str]) -> list[str]:
        """``ssh ... HOST -- kvmtui ARGS`` with this host's ssh options, each argument quoted
        for the remote shell (a BPF filter keeps its spaces)."""
        argv = self._ssh_options()
        return [*argv, self.target, "--", shlex.quote(self.command),
                *(shlex.quote(a) for a in kvmtui_args)]  # fmt: skip

    def _argv(self, once: bool) -> list[str]:
        argv = self._ssh_options()
        argv += [self.target, "--", self.command]
        if self.uri:
            argv += ["-c", self.uri]
        argv += ["agent"] + (["--once"] if once else [])
        return argv

    def _ssh_options(self) -> list[str]:
        argv = ["ssh", "-T", "-o", "BatchMode=yes"]
        argv += ["-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}"]
        if self.ssh_config:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="kvmtui-ssh-")
                cfg = os.path.join(self._tmp.name, "config")
                with open(cfg, "w") as f:
                    f.write(f"Include {os.path.abspath(self.ssh_config)}\n")
                    f.write("Include ~/.ssh/config\nInclude /etc/ssh/ssh_config\n")
            argv += ["-F", os.path.join(self._tmp.name, "config")]
        return argv

    def _start(self, once: bool) -> subprocess.Popen[str]:
        try:
            return subprocess.Popen(
                self._argv(once), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
        except FileNotFoundError:
            raise HostUnavailable("ssh not found: install OpenSSH's client for --host") from None

    def _fail(self, proc: subprocess.Popen[str]) -> HostUnavailable:
        try:
            _, err = proc.communicate(timeout=self.connect_timeout + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = ""
        rc = proc.returncode
        last = (err or "").strip().splitlines()[-1:] or [""]
        if rc == 127 or "command not found" in (err or "") or "not found" in last[0]:
            return HostUnavailable(
                f"{self.target}: kvmtui is not installed there (or not on its PATH); "
                "install it on that host (pip install kvmtui)"
            )
        if rc == 255:
            return HostUnavailable(f"cannot reach {self.target} over ssh: {last[0][:200]}")
        return HostUnavailable(f"{self.target}: kvmtui agent failed (exit {rc}): {last[0][:200]}")

    def _hello(self, proc: subprocess.Popen[str]) -> None:
        line = self._line(proc)
        if line is None:
            raise self._fail(proc)
        agent = line.get("agent")
        if agent != PROTOCOL:
            proc.kill()
            raise HostUnavailable(
                f"{self.target} runs kvmtui {line.get('version', '?')} (agent protocol "
                f"{agent!r}); this kvmtui speaks protocol {PROTOCOL}: install the same version"
            )

    def _line(self, proc: subprocess.Popen[str]) -> dict[str, Any] | None:
        out: IO[str] | None = proc.stdout
        if out is None:
            return None
        text = out.readline()
        if not text:
            return None
        try:
            obj = json.loads(text)
        except ValueError:
            proc.kill()
            raise HostUnavailable(
                f"{self.target}: the remote kvmtui agent said something else: {text[:80]!r}"
            ) from None
        return obj if isinstance(obj, dict) else {}

    def _snap(self, line: dict[str, Any]) -> HostSnapshot:
        try:
            snap = decode_snapshot(line.get("snapshot"))
        except DecodeError as e:
            raise HostUnavailable(f"{self.target}: bad snapshot from the agent: {e}") from None
        self._last = snap
        return snap

    def snapshot(self) -> HostSnapshot:
        proc = self._start(once=True)
        try:
            self._hello(proc)
            line = self._line(proc)
            if line is None:
                raise self._fail(proc)
            return self._snap(line)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def watch(self, on_snapshot: Callable[[HostSnapshot], None], stop: threading.Event) -> None:
        proc = self._start(once=False)

        def killer() -> None:
            stop.wait()
            if proc.poll() is None:
                proc.terminate()

        threading.Thread(target=killer, daemon=True).start()
        try:
            self._hello(proc)
            while not stop.is_set():
                line = self._line(proc)
                if line is None:
                    if stop.is_set():
                        return
                    raise self._fail(proc)
                if "snapshot" in line:
                    on_snapshot(self._snap(line))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def counters(self) -> Mapping[str, LinkStats]:
        snap = self._last or self.snapshot()
        return {lk.name: lk.stats for lk in snap.links}

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
