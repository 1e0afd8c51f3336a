"""Which host a command or the explorer reads: this one, a recording, or one over SSH.

Every command reads the host through :func:`read_snapshot` (one snapshot) or
:func:`open_source` (a :class:`~kvmtui.core.source.SnapshotSource` with change events), so
``--replay FILE`` and ``--host [USER@]HOST`` apply to all of them the same way. The recorded and
remote sources live in their own modules and are imported only when asked for.
"""

from __future__ import annotations

import argparse

from kvmtui.core.model import HostSnapshot
from kvmtui.core.source import HostUnavailable, SnapshotSource

__all__ = ["HostUnavailable", "open_source", "read_snapshot"]


def _uri(args: argparse.Namespace) -> str | None:
    uri = getattr(args, "connect", None)
    return str(uri) if uri else None


def open_source(args: argparse.Namespace) -> SnapshotSource:
    """The source ``args`` names (``--replay``, ``--host``, else this host through netlink and
    libvirt). May block; raises :class:`HostUnavailable`."""
    replay = getattr(args, "replay", None)
    if replay:
        from kvmtui.core.recorded import open_recording

        recorded: SnapshotSource = open_recording(str(replay))
        return recorded
    remote = getattr(args, "remote", None)
    if remote and len(remote) > 1:
        raise HostUnavailable(
            f"--host given {len(remote)} times: a command reads one host "
            "(the explorer opens a host picker for several)",
            2,
        )
    if remote:
        from kvmtui.core.remote import RemoteHost

        over_ssh: SnapshotSource = RemoteHost(
            str(remote[0]),
            ssh_config=getattr(args, "ssh_config", None),
            connect_timeout=float(getattr(args, "connect_timeout", None) or 5.0),
            uri=_uri(args),
        )
        return over_ssh
    from kvmtui.core.live import LiveHost

    return LiveHost(uri=_uri(args))


def read_snapshot(args: argparse.Namespace) -> HostSnapshot:
    """One snapshot of the host ``args`` names (a one-shot read for the headless commands)."""
    if getattr(args, "replay", None) or getattr(args, "remote", None):
        src = open_source(args)
        try:
            return src.snapshot()
        finally:
            src.close()
    from kvmtui.core.snapshot import read_host

    return read_host(uri=_uri(args))
