"""The capture's hop header: each hop's device, role, packets seen and kernel drops.

One cell per captured hop, in path order, with the conceptual hops (NAT, the LAN) shown
between them as arrows' labels. Under the cells, the bridge hop's promiscuous-mode note: a
socket on a bridge sees the frames the bridge forwards between its ports only while the bridge
is promiscuous, and the kernel undoes that when the socket closes (the engine's
``PROMISC_EXPLANATION`` is in the screen's help).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from kvmtui.capture.engine import HopStatus
from kvmtui.core.model import NicPath

ROLE = {"tap": "tap", "macvtap": "macvtap", "bridge": "bridge", "uplink": "uplink"}
BETWEEN = {"nat": "NAT", "route": "routed", "lan": "LAN", "end": "no way out"}
STATE_MARK = {"capturing": "●", "gone": "✗ gone", "down": "✗ down", "error": "✗ error"}

PROMISC_SHORT = "{bridge} promiscuous while capturing (restored on close)"


def promisc_note(hops: Sequence[HopStatus]) -> str | None:
    br = [h.dev for h in hops if h.promisc]
    if not br:
        return None
    return PROMISC_SHORT.format(bridge=", ".join(br))


class CaptureHops(Static):
    """Renders a tuple of :class:`HopStatus` (and the path's non-device hops between them)."""

    DEFAULT_CSS = """
    CaptureHops { height: auto; padding: 0 1; background: $panel; }
    """

    def __init__(self, path: NicPath | None, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.path = path
        self.hops: tuple[HopStatus, ...] = ()
        self._shown = False

    def show(self, hops: Sequence[HopStatus], path: NicPath | None = None) -> None:
        hops = tuple(hops)
        if path is not None:
            self.path = path
        if hops == self.hops and self._shown and path is None:
            return
        self.hops = hops
        self._shown = True
        self.update(self.render_hops())

    def _between(self, after: int, before: int) -> str:
        """Labels of the path's conceptual hops between two captured hops' indexes."""
        if self.path is None:
            return ""
        names = [
            BETWEEN.get(h.role, h.role) for h in self.path.hops[after + 1 : before] if not h.dev
        ]
        return " ".join(names)

    def plain(self, width: int = 200) -> str:
        """The header as plain text (tests, the bench)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=None, color_system=None)
        with console.capture() as cap:
            console.print(self.render_hops())
        return cap.get()

    def render_hops(self) -> Table | Text:
        if not self.hops:
            return Text("no hop captured yet", style="italic")
        grid = Table.grid(padding=(0, 1), expand=False)
        cols = []
        for i, h in enumerate(self.hops):
            if i:
                grid.add_column(justify="center")
                cols.append(("arrow", self.hops[i - 1].index, h.index))
            grid.add_column()
            cols.append(("hop", h.index, h.index))
        if self.path is not None:
            tail = self._between(self.hops[-1].index, len(self.path.hops))
            if tail:
                grid.add_column(justify="center")
                cols.append(("tail", self.hops[-1].index, len(self.path.hops)))
        by_index = {h.index: h for h in self.hops}
        line1: list[Text] = []
        line2: list[Text] = []
        for kind, a, b in cols:
            if kind == "hop":
                h = by_index[a]
                mark = STATE_MARK.get(h.state, h.state)
                style = "bold" if h.state == "capturing" else "bold reverse"
                line1.append(Text(f"{h.dev} ", style=style) + Text(f"{ROLE.get(h.role, h.role)}"))
                drops = f" · {h.dropped} dropped" if h.dropped else " · 0 drops"
                line2.append(Text(f"{mark} {h.received} seen{drops}"))
            else:
                label = self._between(a, b)
                line1.append(Text(f"→ {label} →" if label else "→"))
                line2.append(Text(""))
        grid.add_row(*line1)
        grid.add_row(*line2)
        return grid
