"""Capture view of one NIC (issue 5 replaces this placeholder with live packet lanes per hop).

For now it shows the NIC's hops, the verdict, and says that live capture is not in this build.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from kvmtui.core.model import NicPath
from kvmtui.ui.widgets.path_view import PathView

NOT_YET = "Live capture is not in this build yet: this screen will show packets at every hop."


class CaptureScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="capture.close"),
    ]
    DEFAULT_CSS = """
    CaptureScreen #capture-title { padding: 0 1; background: $panel; text-style: bold; }
    CaptureScreen #capture-note { padding: 1 2; color: $warning; }
    """

    def __init__(self, vm: str, mac: str, path: NicPath | None) -> None:
        super().__init__()
        self.vm = vm
        self.mac = mac
        self.path = path

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Capture: VM {escape(self.vm)} NIC {escape(self.mac)}", id="capture-title")
        yield PathView(id="capture-path")
        yield Static(NOT_YET, id="capture-note")
        yield Footer()

    async def on_mount(self) -> None:
        await self.query_one(PathView).show_path(
            self.path, empty="No path known for this NIC (the host model has none)."
        )

    def action_close(self) -> None:
        self.app.pop_screen()
