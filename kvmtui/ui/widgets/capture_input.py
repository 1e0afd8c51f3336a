"""The capture screen's input line (BPF filter, export path) and its help modal."""

from __future__ import annotations

import os
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Static

from kvmtui.capture.engine import PROMISC_EXPLANATION
from kvmtui.ui.capture_model import LANE_LEGEND
from kvmtui.ui.screens.help import HelpModal

# the capture screen's layout (its DEFAULT_CSS): title, hop strip, filters, input, panes, note
CAPTURE_CSS = """
    CaptureScreen { layout: vertical; }
    CaptureScreen #capture-title { height: 1; padding: 0 1; background: $primary;
                                   color: $text; text-style: bold; }
    CaptureScreen #capture-promisc { height: auto; padding: 0 1; color: $text-muted; }
    CaptureScreen #capture-filters { height: 1; padding: 0 1; }
    CaptureScreen CaptureInputBar { height: auto; }
    CaptureScreen #capture-input { display: none; }
    CaptureScreen #capture-input.-shown { display: block; }
    CaptureScreen #capture-input-error { display: none; padding: 0 1; color: $error; height: auto; }
    CaptureScreen #capture-input-error.-shown { display: block; }
    CaptureScreen #capture-input-hint { display: none; padding: 0 1; color: $text-muted;
                                        height: auto; }
    CaptureScreen #capture-input-hint.-shown { display: block; }
    CaptureScreen ContentSwitcher { height: 1fr; }
    CaptureScreen #packets { height: 1fr; }
    CaptureScreen CapturePacketTable { height: 1fr; border: round $panel; }
    CaptureScreen CapturePacketTable:focus { border: heavy $accent; }
    CaptureScreen CaptureDetail { height: 35%; min-height: 5; }
    CaptureScreen #capture-note { height: auto; max-height: 3; padding: 0 1; }
    CaptureScreen #capture-note.-warning { color: $warning; }
    CaptureScreen #capture-note.-error { color: $error; text-style: bold; }
    CaptureScreen #capture-note.-ok { color: $success; }
    CaptureScreen #capture-fallback { display: none; height: 1fr; }
    CaptureScreen.-unavailable #capture-fallback { display: block; }
    CaptureScreen.-unavailable ContentSwitcher { display: none; }
    CaptureScreen.-unavailable #capture-filters { display: none; }
    """


class CaptureInput(Input):
    """The BPF / export path input: Enter applies, Escape cancels (not the screen's Back)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="capture.input.cancel"),
    ]

    class Cancelled(Message):
        pass

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class CaptureHelp(HelpModal):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss", "Close", id="capture.help.close"),
    ]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self._keys = keys

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Help: live capture   (Esc closes)", id="help-title")
            with VerticalScroll():
                yield Static("Keys", classes="help-section")
                yield Static(
                    "\n".join(f"[b]{escape(k):>12}[/b]  {escape(d)}" for k, d in self._keys)
                )
                yield Static("Reading the packet list", classes="help-section")
                yield Static(escape(LANE_LEGEND))
                yield Static("Why the bridge is promiscuous", classes="help-section")
                yield Static(escape(PROMISC_EXPLANATION), id="help-promisc")


INPUT_MODES = {
    "bpf": ("BPF filter (Enter applies, Esc cancels)", "e.g. icmp or udp port 53 (empty: none)"),
    "export": ("export pcapng to (Enter writes, Esc cancels)", "a path for the .pcapng file"),
}


def export_hint(value: str, rows: int) -> str:
    """The export dialog's line under the path: the file it will write, whole."""
    if not value.strip():
        return "no path: Enter writes nothing"
    target = os.path.abspath(os.path.expanduser(value.strip()))
    return f"will write {target} (pcapng: the {rows:,} rows kept, every hop's copy)"


class CaptureInputBar(Vertical):
    """The input line with its error line and, for an export, the path it will write.

    Enter posts :class:`Submitted` (the screen decides: a refused BPF filter keeps the bar
    open with the error under it); Escape closes it and posts :class:`Closed`."""

    DEFAULT_CSS = "CaptureInputBar { height: auto; }"

    class Submitted(Message):
        def __init__(self, mode: str, value: str) -> None:
            super().__init__()
            self.mode, self.value = mode, value

    class Closed(Message):
        pass

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.mode: str | None = None
        self.rows = 0

    def compose(self) -> ComposeResult:
        yield CaptureInput(id="capture-input")
        yield Static("", id="capture-input-hint", markup=False)
        yield Static("", id="capture-input-error")

    def open(self, mode: str, value: str, rows: int = 0) -> None:
        self.mode, self.rows = mode, rows
        inp = self.query_one(CaptureInput)
        inp.border_title, inp.placeholder = INPUT_MODES[mode]
        inp.value = value
        inp.add_class("-shown")
        inp.cursor_position = len(value)
        self.error(None)
        self._hint(value)
        inp.focus()

    def close(self) -> None:
        self.mode = None
        self.query_one(CaptureInput).remove_class("-shown")
        self.query_one("#capture-input-hint", Static).remove_class("-shown")
        self.post_message(self.Closed())

    def error(self, text: str | None) -> None:
        err = self.query_one("#capture-input-error", Static)
        err.update("✗ " + escape(text) if text else "")
        err.set_class(bool(text), "-shown")

    @on(CaptureInput.Cancelled)
    def _cancelled(self) -> None:
        self.error(None)
        self.close()

    @on(Input.Submitted, "#capture-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.mode is not None:
            self.post_message(self.Submitted(self.mode, event.value.strip()))

    @on(Input.Changed, "#capture-input")
    def _changed(self, event: Input.Changed) -> None:
        self._hint(event.value)

    def _hint(self, value: str) -> None:
        hint = self.query_one("#capture-input-hint", Static)
        shown = self.mode == "export"
        hint.set_class(shown, "-shown")
        if shown:
            hint.update(export_hint(value, self.rows))


def help_keys(screen: Screen[None]) -> list[tuple[str, str]]:
    """The screen's active bindings with a description, once each, then the table's keys."""
    keys: list[tuple[str, str]] = []
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        b = active.binding
        if not b.description or b.system or b.action in seen:
            continue
        seen.add(b.action)
        keys.append((screen.app.get_key_display(b), b.description))
    keys += [("j/k, ↑/↓", "move in the list"), ("G", "last row, follow new packets")]
    return keys
