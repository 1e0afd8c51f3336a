"""Drive a program in a detached tmux session and read its screen back (capture-pane)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid


class Tmux:
    def __init__(self, command: list[str], *, width: int = 80, height: int = 24,
                 cwd: str | None = None) -> None:  # fmt: skip
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.name = f"kvD-{uuid.uuid4().hex[:8]}"
        # keep the pane after the program exits, so a crash is read back, not lost
        cmd = " ".join(shlex.quote(c) for c in command)
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
             "-c", cwd or ".", f"{cmd}; echo '[exited]' $?; sleep 600"],
            check=True,
        )  # fmt: skip
        subprocess.run(["tmux", "set-option", "-t", self.name, "remain-on-exit", "on"],
                       check=False, capture_output=True)  # fmt: skip

    def screen(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                             capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout

    def keys(self, *keys: str, pause: float = 0.3) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
            time.sleep(pause)

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        t0 = time.monotonic()
        screen = ""
        while time.monotonic() - t0 < timeout:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen after {timeout} s:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False,
                       capture_output=True)  # fmt: skip
