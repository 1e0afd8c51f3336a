"""The capture screen's last word: one line (up to three) under the panes, coloured by level."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

LEVELS = ("warning", "error", "ok")


class CaptureNote(Static):
    """What the capture last said (``text``) at a level: "", "ok", "warning" or "error"."""

    def __init__(self, text: str = "", **kwargs: object) -> None:
        super().__init__(escape(text), **kwargs)  # type: ignore[arg-type]
        self.text = ""
        self.level = ""

    def say(self, text: str, level: str = "") -> None:
        if (text, level) == (self.text, self.level):
            return
        self.text, self.level = text, level
        self.remove_class(*(f"-{lv}" for lv in LEVELS))
        if level:
            self.add_class(f"-{level}")
        self.update(escape(text))
