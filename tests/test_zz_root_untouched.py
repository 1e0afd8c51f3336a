"""The root namespace's links, routes, ip_forward and nft ruleset are left as they were.

The full check runs in conftest's ``pytest_sessionfinish``, after the lab's teardown, and fails
the run on any difference. This file checks the same while the lab is up (mid-session),
and that the comparison itself catches each kind of change (on copies of the snapshot: the
root namespace itself is never touched).
"""

from __future__ import annotations

import copy
from typing import Any

from labtools import root_differences, root_snapshot


def test_root_namespace_unchanged_so_far(root_before: dict[str, Any]) -> None:
    assert root_differences(root_before, root_snapshot()) == []


def test_the_comparison_sees_every_kind_of_change(root_before: dict[str, Any]) -> None:
    assert root_differences(root_before, copy.deepcopy(root_before)) == []
    changed = copy.deepcopy(root_before)
    changed["links"].append((999, "vnet9", "ether", "fe:54:00:00:00:09", 1500, "virbr0", ()))
    assert any("added" in d and "vnet9" in d for d in root_differences(root_before, changed))
    changed = copy.deepcopy(root_before)
    changed["routes"].append('{"dst": "192.168.122.0/24", "dev": "virbr0"}')
    assert any("routes: added" in d for d in root_differences(root_before, changed))
    changed = copy.deepcopy(root_before)
    changed["nft"] += "table ip nat {\n}\n"
    assert root_differences(root_before, changed) == ["nft ruleset changed"]
    changed = copy.deepcopy(root_before)
    changed["ip_forward"] = "0" if root_before["ip_forward"] == "1" else "1"
    assert len(root_differences(root_before, changed)) == 1
