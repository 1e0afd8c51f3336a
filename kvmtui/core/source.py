"""The interface between the host model and its clients (the UI, the CLI, the capture view).

``kvmtui.core.live.LiveHost`` implements it on a real host; the UI tests hand the app a fake one
built from a fixed ``HostSnapshot``. Every method may block: clients call them from worker
threads, never from the UI's event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from kvmtui.core.model import HostSnapshot, LinkStats


class SnapshotSource(Protocol):
    def snapshot(self) -> HostSnapshot:
        """Read everything now and return one immutable snapshot (blocking)."""
        ...

    def watch(self, on_snapshot: Callable[[HostSnapshot], None], stop: threading.Event) -> None:
        """Block until ``stop`` is set, calling ``on_snapshot`` with a new snapshot within
        100 ms of each change on the host (netlink multicast, libvirt events). Reconnects to
        libvirtd when it comes back."""
        ...

    def counters(self) -> Mapping[str, LinkStats]:
        """Per-interface counters, cheap enough to poll every second."""
        ...

    def close(self) -> None: ...


class HostUnavailable(RuntimeError):
    """The chosen host cannot be read (bad recording, SSH unreachable): one line for the user.
    ``code`` is the exit code: 2 for bad input (a truncated or foreign file), 1 otherwise."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
