"""The line under the header that says what the model could not read (never a traceback)."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from kvmtui.core.model import Problem


class ProblemBar(Static):
    DEFAULT_CSS = """
    ProblemBar { height: auto; max-height: 3; padding: 0 1; display: none;
                 background: $warning 20%; color: $text; }
    ProblemBar.-shown { display: block; }
    """

    def show(self, problems: tuple[Problem, ...], trouble: str = "") -> None:
        lines = [f"[$warning]⚠[/] {escape(trouble)}"] if trouble else []
        lines += [f"[$warning]⚠[/] {p.source}: {escape(p.message)}" for p in problems]
        if len(lines) > 3:
            lines = [*lines[:2], f"… and {len(lines) - 2} more (F1 lists them)"]
        self.update("\n".join(lines))
        self.set_class(bool(lines), "-shown")
