"""``kvmtui lab lesson NAME`` on the real lab: each run does the seed's experiment and the
evidence printed under "observed" is kvmtui's own capture of it, not a canned text."""

from __future__ import annotations

import re

import pytest
from labtools import lab_cli

from kvmtui.lab import spec
from kvmtui.lab.handle import LabHandle

pytestmark = pytest.mark.lab


def _lesson(lab: LabHandle, name: str) -> str:
    cp = lab_cli(lab.prefix, "lesson", name, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert "Traceback" not in cp.stdout + cp.stderr
    return cp.stdout


def test_list_names_every_lesson_in_both_languages(lab: LabHandle) -> None:
    en = lab_cli(lab.prefix, "lesson").stdout.splitlines()
    vi = lab_cli(lab.prefix, "lesson", "--lang", "vi").stdout.splitlines()
    names = [ln.split()[0] for ln in en]
    assert names == [ln.split()[0] for ln in vi]
    assert {"bridged", "host-only", "nat", "dhcp", "no-bridge", "mac-learning"} <= set(names)
    assert en != vi  # the titles are translated


def test_host_only_fails_outside_and_works_next_door(lab: LabHandle) -> None:
    lab.wait_ip("iso-a")
    peer = lab.wait_ip("iso-b")
    out = _lesson(lab, "host-only")
    did = next(ln for ln in out.splitlines() if ln.startswith("did: "))
    assert f"pinged {spec.INTERNET_IP}: no reply" in did, out
    assert f"neighbour iso-b {peer}: replies" in did, out


def test_mac_learning_shows_a_flood_then_forwards(lab: LabHandle) -> None:
    lab.wait_ip("iso-a")
    lab.wait_ip("iso-b")
    out = _lesson(lab, "mac-learning")
    observed = out.split("observed", 1)[1]
    b = spec.lab_vm("iso-b")
    # the switch view printed by the lesson: a frame to iso-b forwarded to its port only
    assert re.search(rf"forward.*{b.tap}|{b.tap}.*forward", observed), out


def test_dhcp_lesson_shows_dora_served_by_libvirts_dnsmasq(lab: LabHandle) -> None:
    lab.wait_ip("nat-light")
    out = _lesson(lab, "dhcp")
    observed = out.split("observed", 1)[1]
    for step in ("Discover", "Offer", "Request", "Ack"):
        assert step in observed, out
    assert "dnsmasq" in observed and spec.NAT_BRIDGE in observed, out


def test_unknown_lesson_is_one_line_exit_2(lab: LabHandle) -> None:
    cp = lab_cli(lab.prefix, "lesson", "no-such-lesson")
    assert cp.returncode == 2 and len(cp.stderr.strip().splitlines()) == 1, cp.stderr
