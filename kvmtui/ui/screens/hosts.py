"""The host picker: ``kvmtui --host a --host b ...`` opens here, one row per host; Enter opens
that host's explorer, ``H`` in the explorer comes back (the host being explored is marked).

The screen only names a host: it dismisses with the chosen target and the app switches its
source (``KvmApp.open_host``), so nothing here touches SSH or a source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from kvmtui.core.model import HostSnapshot
from kvmtui.ui.widgets.vim_table import Cell, VimTable

COLUMNS = [("host", "Host"), ("seen", "Last seen")]


def seen_text(snap: HostSnapshot) -> str:
    return f"{snap.hostname}: {len(snap.vms)} VMs, {len(snap.bridges)} bridges"


def host_rows(hosts: Sequence[str], seen: Mapping[str, str]) -> list[tuple[str, tuple[Cell, ...]]]:
    """One row per host, in the order given, with what its last snapshot said (hostname, VMs,
    bridges) or that it was not read yet."""
    return [(h, (h, seen.get(h, "not read yet"))) for h in hosts]


class HostPickerScreen(Screen[str]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="hosts.open"),
        Binding("escape", "back", "Back", id="hosts.back"),
        Binding("q", "app.quit", "Quit", id="hosts.quit"),
    ]
    DEFAULT_CSS = """
    HostPickerScreen #hosts-title { height: 1; padding: 0 1; background: $panel;
                                    text-style: bold; }
    HostPickerScreen VimTable { height: 1fr; border: round $panel; }
    HostPickerScreen VimTable:focus { border: heavy $accent; }
    HostPickerScreen #hosts-hint { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(
        self,
        hosts: Sequence[str],
        current: str | None = None,
        seen: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.hosts = tuple(hosts)
        self.current = current
        self.seen = dict(seen or {})

    def compose(self) -> ComposeResult:
        yield Static(f"Hosts · {len(self.hosts)} over SSH", id="hosts-title")
        yield VimTable(COLUMNS, id="hosts-table")
        yield Static(
            "Enter opens that host's explorer · H there comes back here · ◆ explored now",
            id="hosts-hint",
        )
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(VimTable)
        table.sync_rows(host_rows(self.hosts, self.seen))
        if self.current in self.hosts:
            table.set_marked({self.current})
            table.move_cursor(row=self.hosts.index(self.current))
        table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return True if self.current is not None else None  # nothing to go back to yet
        return True

    def action_open(self) -> None:
        key = self.query_one(VimTable).current_key()
        if key is not None:
            self.dismiss(key)

    def action_back(self) -> None:
        if self.current is not None:
            self.dismiss(self.current)

    @on(VimTable.RowSelected)
    def _selected(self, event: VimTable.RowSelected) -> None:
        event.stop()
        self.action_open()
