"""The host tree relabels a bridge whose label changed, and leaves the tree alone (no
set_label, no width pass over every line) when a new snapshot says the same: on a host of
1,000 ports each live FDB change used to re-measure all of the tree's lines."""

from __future__ import annotations

import dataclasses

from kvmtui.ui.widgets.host_pane import HostPane, HostTree
from tests.ui.conftest import make_app
from tests.ui.helpers import loaded, wait_for
from tests.ui.sample import FakeSource, sample_snapshot


async def test_bridge_label_follows_its_state_and_same_labels_are_left_alone() -> None:
    base = sample_snapshot()
    same = dataclasses.replace(base, taken_at=base.taken_at + 1)  # new objects, same labels
    down = dataclasses.replace(
        same,
        bridges=tuple(
            dataclasses.replace(b, state="down") if b.name == "virbr1" else b for b in same.bridges
        ),
    )
    source = FakeSource(base, updates=[same, down], update_delay=0.5)
    async with make_app(source=source).run_test(size=(120, 40)) as pilot:
        app = await loaded(pilot)
        pane = app.query_one(HostPane)
        tree = app.query_one(HostTree)
        fits: list[int] = []
        real = tree.fit_width
        tree.fit_width = lambda: (fits.append(1), real())[1]  # type: ignore[method-assign]

        def label(key: str) -> str:
            return pane._tree_nodes[key].label.plain  # type: ignore[union-attr]

        assert "· up" in label("bridge:virbr1")
        await wait_for(pilot, lambda: app.snapshot is same, timeout=5)
        await pilot.pause(0.1)
        assert fits == []  # nothing to relabel
        await wait_for(pilot, lambda: app.snapshot is down, timeout=5)
        await wait_for(pilot, lambda: "· down" in label("bridge:virbr1"))
        assert fits and "· up" in label("bridge:virbr0")
