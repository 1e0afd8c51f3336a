"""Enter a network namespace for the calling thread only, to open sockets there.

A socket keeps the namespace it was created in, so the lab tests (in the root namespace) and
the capture engine can read another namespace without forking: enter, create the socket (netlink,
AF_PACKET, pyroute2's IPRoute), leave. Only the calling thread moves; the rest of the process,
and the root namespace, are untouched. Python 3.11 has no ``os.setns``, hence ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_path(name: str) -> str:
    return name if name.startswith("/") else os.path.join(NETNS_RUN_DIR, name)


def open_netns(name: str) -> int:
    """An fd on namespace ``name`` (a name under /run/netns or a path); holding it keeps the
    namespace alive even if ``ip netns del`` runs meanwhile."""
    try:
        return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileNotFoundError(f"network namespace {name!r} does not exist") from None


@contextlib.contextmanager
def entered(fd: int | None) -> Iterator[None]:
    """Run the body with this thread in the namespace open at ``fd``, back in its own after
    (None: stay where we are). The one place a thread changes namespace: :func:`in_netns` and
    ``kvmtui.core.nlsock.NsHandle.entered`` both come here."""
    if fd is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


@contextlib.contextmanager
def in_netns(name: str | None) -> Iterator[None]:
    """Run the body with this thread in namespace ``name`` (None: stay where we are)."""
    if name is None:
        yield
        return
    target = open_netns(name)
    try:
        with entered(target):
            yield
    finally:
        os.close(target)
