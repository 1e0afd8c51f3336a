"""One way into a namespace: ``in_netns`` (by name) and ``NsHandle.entered`` (by a held fd) both
move only the calling thread, always come back, and differ only in the errors they raise.
Needs root (``ip netns add``); a namespace of its own, removed at the end."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest

from kvmtui.core import nlsock
from kvmtui.core.netns import in_netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (ip netns add)")


def here() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"kvN-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_by_name_and_by_handle_enter_the_same_namespace_and_come_back(ns: str) -> None:
    own, target = here(), os.stat(f"/run/netns/{ns}").st_ino
    assert own != target
    seen_by_other: list[int] = []
    ask, told = threading.Event(), threading.Event()

    def other() -> None:  # a thread that was already running
        ask.wait(5)
        seen_by_other.append(here())
        told.set()

    t = threading.Thread(target=other)
    t.start()
    with in_netns(ns):
        assert here() == target
        ask.set()
        told.wait(5)
    t.join()
    assert here() == own and seen_by_other == [own]  # only this thread moved
    with nlsock.NsHandle(ns) as h, h.entered():
        assert here() == target
    assert here() == own
    with nlsock.NsHandle(None) as h, h.entered(), in_netns(None):
        assert here() == own


def test_a_failing_body_still_comes_back_and_keeps_its_own_error(ns: str) -> None:
    own = here()
    with pytest.raises(OSError, match="body") as raised, nlsock.NsHandle(ns) as h, h.entered():
        raise OSError("body")
    assert not isinstance(raised.value, nlsock.NetlinkError)  # not taken for a refused entry
    assert here() == own
    with pytest.raises(ValueError), in_netns(ns):
        raise ValueError
    assert here() == own


def test_missing_namespace_and_refused_entry() -> None:
    gone = f"kvN-gone-{uuid.uuid4().hex[:6]}"
    missing = f"network namespace '{gone}' does not exist"
    with pytest.raises(FileNotFoundError, match=missing), in_netns(gone):
        pass
    with pytest.raises(nlsock.NetnsGone, match=gone):
        nlsock.NsHandle(gone)
    h = nlsock.NsHandle(None)
    h.name, h.fd = "not-a-netns", os.open("/dev/null", os.O_RDONLY)  # setns refuses it
    own = here()
    refused = "cannot enter network namespace 'not-a-netns'"
    with pytest.raises(nlsock.NetlinkError, match=refused), h.entered():
        pass
    h.close()
    assert here() == own
