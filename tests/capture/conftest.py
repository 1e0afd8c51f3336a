"""Fixtures of the capture tests: a small KVM-host topology of our own (see ``topo.py``).

Its namespaces start with ``KVMTUI_CAPTURE_PREFIX`` (default ``kvE-``) and are removed at the
end of the session, even after failures.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from topo import Topo

PREFIX = os.environ.get("KVMTUI_CAPTURE_PREFIX", "kvE-")


@pytest.fixture(scope="session")
def topo() -> Iterator[Topo]:
    if os.geteuid() != 0:
        pytest.fail("the capture tests need root (namespaces, AF_PACKET)")
    t = Topo(PREFIX)
    lab_prefix = os.environ.get("KVMTUI_LAB_PREFIX", "kvmtuit-")
    if any(ns.startswith(lab_prefix) for ns in t.namespaces()):
        pytest.fail(
            f"KVMTUI_CAPTURE_PREFIX {PREFIX!r} makes namespaces the lab {lab_prefix!r} would "
            "count as its own leftovers: choose prefixes that do not overlap"
        )
    try:
        t.up()
        yield t
    finally:
        t.down()
