"""Helpers for pilot tests: wait for a condition, read a pane's rows and labels as text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot

from kvmtui.ui.app import KvmApp
from kvmtui.ui.widgets.host_pane import HostTree
from kvmtui.ui.widgets.line_table import LineTable
from kvmtui.ui.widgets.vim_table import VimTable


async def wait_for(pilot: Pilot[int], cond: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll ``cond`` while the app runs. A plain sleep, not ``pilot.pause``: the pilot waits for
    every widget it saw to run a callback, and a widget removed meanwhile (the path view rebuilds
    its hop boxes when a VM vanishes) never does, which timed out after 30 s under load."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def loaded(pilot: Pilot[int]) -> KvmApp:
    app = pilot.app
    assert isinstance(app, KvmApp)
    await wait_for(pilot, lambda: app.snapshot is not None)
    await pilot.pause(0.05)
    return app


def rows(table: VimTable | LineTable) -> list[list[str]]:
    """Cells as text; the first cell keeps the identity mark '◆ ' but not the blank room for it."""
    out = []
    for k in table.row_keys:
        cells = [str(c) for c in table.get_row(k)]
        if cells and cells[0].startswith("  "):
            cells[0] = cells[0][2:]
        out.append(cells)
    return out


def tree_lines(tree: HostTree) -> list[str]:
    out = []
    for line in range(tree.last_line + 1):
        node = tree.get_node_at_line(line)
        if node is not None:
            out.append(str(node.label))
    return out


def cursor_row(table: VimTable) -> list[str]:
    key = table.current_key()
    assert key is not None
    return [str(c).removeprefix("◆ ").removeprefix("  ") for c in table.get_row(key)]
