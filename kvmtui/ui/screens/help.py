"""F1: contextual help, built from the bindings active where the focus is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import App, ComposeResult
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


SECTION_NAMES = {
    "KvmApp": "Everywhere",
    "HostTree": "Host tree",
    "HostPane": "Host pane",
    "MacPane": "MAC table",
    "MacTable": "MAC table rows",
    "VimTable": "Table",
    "NetworksPane": "Networks",
    "VmsPane": "VMs",
    "Screen": "Screen",
    "TabbedContent": "Tabs",
    "Tabs": "Tabs",
}


def help_rows(app: App[Any]) -> tuple[str, list[HelpRow]]:
    """The keys that work where the focus is (nearest widget first), keymap applied."""
    focused = app.focused
    chain: list[object] = list(focused.ancestors_with_self) if focused else [app.screen, app]
    title = SECTION_NAMES.get(type(focused).__name__, type(focused).__name__) if focused else ""
    grouped: dict[tuple[int, str, str], list[str]] = {}
    info: dict[tuple[int, str, str], tuple[str, str | None]] = {}
    # Screen.active_bindings: the bindings reachable from the focused widget, keymap applied
    for key, active in app.screen.active_bindings.items():
        b = active.binding
        if not b.description or b.system:
            continue
        node = active.node
        depth = chain.index(node) if node in chain else len(chain)
        section = SECTION_NAMES.get(type(node).__name__, type(node).__name__)
        group = (depth, section, b.action)
        grouped.setdefault(group, []).append(app.get_key_display(b) if key == b.key else key)
        if group not in info or (info[group][1] is None and b.id):
            info[group] = (b.description, b.id)
    rows = []
    for group in sorted(grouped, key=lambda g: g[0]):
        description, binding_id = info[group]
        keys = ", ".join(dict.fromkeys(grouped[group]))
        rows.append(HelpRow(group[1], keys, description, binding_id))
    return title, rows


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
