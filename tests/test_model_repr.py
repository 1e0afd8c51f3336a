"""The repr of a host snapshot is a summary: Textual's ``@work`` names each worker by the
repr of its arguments, and the explorer hands every snapshot to the doctor's worker. The
dataclass repr of a big host is megabytes of text made on the UI thread."""

from __future__ import annotations

from kvmtui.core.model import Bridge, FdbEntry, HostSnapshot, MacOwner


def test_repr_of_a_big_snapshot_is_a_summary() -> None:
    owner = MacOwner("unknown", "")
    fdb = tuple(
        FdbEntry(f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", f"p{i % 100}", None, "static", None,
                 owner)
        for i in range(20_000)
    )  # fmt: skip
    snap = HostSnapshot(
        taken_at=12.5, hostname="kvm1", bridges=(Bridge("br0", 3, "02:00:00:00:00:01", "up",
                                                        fdb=fdb),)
    )  # fmt: skip
    text = repr(snap)
    assert len(text) < 200, text
    assert "hostname='kvm1'" in text and "taken_at=12.5" in text
    assert "bridges=1" in text and "fdb=20000" in text
    assert snap == HostSnapshot(taken_at=12.5, hostname="kvm1", bridges=snap.bridges)
