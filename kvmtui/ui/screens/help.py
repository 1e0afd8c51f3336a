"""F1: contextual help, built from the bindings active where the focus is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Static


@dataclass(frozen=True, slots=True)
class HelpRow:
    section: str
    key: str
    description: str
    binding_id: str | None


INTRO = (
    "Selecting a VM, MAC, IP or tap in any pane highlights it ([b]◆[/b]) in every pane. "
    "Keys can be remapped in ~/.config/kvmtui/keys.toml ($KVMTUI_CONFIG) by binding id, "
    'e.g. \\[keys] "table.down" = "j,down".'
)


class HelpModal(ModalScreen[None]):
    """The frame every help screen shares: a titled, scrolling panel with sections. Subclasses
    add their own close binding (with its own id, so each stays remappable) and compose."""

    DEFAULT_CSS = """
    HelpModal { align: center middle; }
    HelpModal > Vertical { width: 90%; max-width: 100; height: 90%;
                           border: heavy $accent; background: $surface; }
    HelpModal #help-title { padding: 0 1; background: $accent; color: $text; text-style: bold; }
    HelpModal VerticalScroll { padding: 0 1; }
    HelpModal .help-section { margin-top: 1; color: $secondary; text-style: bold; }
    """

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class HelpScreen(HelpModal):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, title: str, rows: list[HelpRow], problems: list[str]) -> None:
        super().__init__()
        self._title = title
        self._rows = rows
        self._problems = problems

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Help: {escape(self._title)}   (Esc closes)", id="help-title")
            with VerticalScroll():
                yield Static(INTRO)
                if self._problems:
                    yield Static("What the host model could not read", classes="help-section")
                    yield Static("\n".join(escape(p) for p in self._problems))
                section = None
                lines: list[str] = []
                for row in self._rows:
                    if row.section != section:
                        if lines:
                            yield Static("\n".join(lines))
                            lines = []
                        section = row.section
                        yield Static(escape(section), classes="help-section")
                    rid = f"  [$text-muted]{escape(row.binding_id)}[/]" if row.binding_id else ""
                    lines.append(f"[b]{escape(row.key):>10}[/b]  {escape(row.description)}{rid}")
                if lines:
                    yield Static("\n".join(lines))
