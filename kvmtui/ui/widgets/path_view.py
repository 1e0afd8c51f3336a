"""A NIC's path out of the host, drawn as a row of hops with each hop's evidence."""

from __future__ import annotations

from functools import partial

from textual.app import ComposeResult
from textual.containers import HorizontalScroll, Vertical
from textual.markup import escape
from textual.widgets import Static

from kvmtui.core.model import Hop, NicPath

ROLE_LABEL = {
    "tap": "tap",
    "bridge": "bridge",
    "uplink": "uplink",
    "nat": "NAT",
    "route": "routing",
    "lan": "LAN",
    "end": "no way out",
    "macvtap": "macvtap",
    "veth": "veth",
}


def hop_title(hop: Hop) -> str:
    role = ROLE_LABEL.get(hop.role, hop.role)
    if hop.vlan is not None:  # on a VLAN-aware bridge: the VLAN, and its tag where it leaves
        tag = {True: " tagged", False: " untagged", None: ""}[hop.tagged]
        role += f", vlan {hop.vlan}{tag}"
    return f"{hop.dev} ({role})" if hop.dev else role


def hop_body(hop: Hop) -> str:
    lines = []
    for ev in hop.evidence:
        mark = {True: "[$success]✓[/]", False: "[$error]✗[/]", None: "[$text-muted]·[/]"}[ev.ok]
        lines.append(f"{mark} {escape(ev.what)}: {escape(ev.value)}")
    return "\n".join(lines) or "[$text-muted]no evidence[/]"


class HopBox(Static):
    DEFAULT_CSS = """
    HopBox { width: 1fr; min-width: 16; height: auto; border: round $primary; padding: 0 1; }
    HopBox.-bad { border: round $error; }
    """

    def __init__(self, hop: Hop, **kwargs: object) -> None:
        super().__init__(hop_body(hop), **kwargs)  # type: ignore[arg-type]
        self.border_title = escape(hop_title(hop))
        if hop.ok is False:
            self.add_class("-bad")


class Arrow(Static):
    DEFAULT_CSS = """
    Arrow { width: 1; height: 3; content-align: center middle; margin-top: 1; color: $accent; }
    """

    def __init__(self) -> None:
        super().__init__("→")


class PathView(Vertical):
    DEFAULT_CSS = """
    PathView { height: auto; }
    PathView #path-hops { height: auto; }
    PathView #path-verdict { padding: 0 1; height: auto; }
    PathView #path-verdict.-ok { color: $success; }
    PathView #path-verdict.-bad { color: $error; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._path: NicPath | None = None
        self.drawn: NicPath | None = None  # what is on screen (tests wait for it)

    def compose(self) -> ComposeResult:
        # the verdict first: at 80x24 tall hops must not push it off the screen
        yield Static("", id="path-verdict")
        yield HorizontalScroll(id="path-hops")

    def draw(self, path: NicPath | None, *, empty: str = "") -> None:
        """Draw ``path`` (or the ``empty`` sentence) from sync code. The latest call wins: an
        exclusive worker cancels a redraw still in flight."""
        if path == self._path and path is not None:
            return
        self._path = path
        # a callable, not a coroutine: a draw cancelled before it starts creates none
        # (Textual types the callable's result as Never; a partial of a coroutine fn is fine)
        work = partial(self._draw, path, empty)
        self.run_worker(work, exclusive=True, group="path-draw")  # type: ignore[arg-type]

    async def show_path(self, path: NicPath | None, *, empty: str = "") -> None:
        """Draw ``path`` and wait until it is on screen (for async callers)."""
        if path == self._path and path is not None:
            return
        self._path = path
        await self._draw(path, empty)

    async def _draw(self, path: NicPath | None, empty: str) -> None:
        hops = self.query_one("#path-hops", HorizontalScroll)
        verdict = self.query_one("#path-verdict", Static)
        await hops.remove_children()
        verdict.remove_class("-ok", "-bad")
        if path is None:
            verdict.update(escape(empty))
            self.drawn = None
            return
        widgets: list[Static] = []
        for i, hop in enumerate(path.hops):
            if i:
                widgets.append(Arrow())
            widgets.append(HopBox(hop))
        await hops.mount_all(widgets)
        self.drawn = path
        notes = "".join(f"\n[$text-muted]note: {escape(n)}[/]" for n in path.notes)
        verdict.update(("✓ " if path.way_out else "✗ ") + escape(path.verdict) + notes)
        verdict.add_class("-ok" if path.way_out else "-bad")
