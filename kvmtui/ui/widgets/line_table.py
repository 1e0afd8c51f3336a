"""A keyed table that renders only the rows on screen (Textual's line API).

DataTable keeps a Python object per row and per cell, so filling it with 50,000 FDB entries
costs seconds and a cursor key re-measures rows. ``LineTable`` holds the rows as one immutable
tuple of (key, cells) and turns a row into text only when it is on screen: opening, moving and
updating cost what the visible rows cost, whatever the table's size. Its API is the subset of
``VimTable`` the panes use (``sync_rows``, ``set_marked``, ``current_key``, ``move_cursor``), so
a pane can switch between the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

MARK = "◆ "
NO_MARK = "  "

# a row: (key, cells, ...): what follows the cells is the caller's (MacPane keeps its FDB entry
# there, so the rows it holds sorted are the rows the table holds, with no copy of 50,000)
Row = tuple[Any, ...]
_KEY = itemgetter(0)
_CELLS = itemgetter(1)


def _width(s: str) -> int:
    return len(s) if s.isascii() else cell_len(s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


@dataclass(frozen=True)
class _Key:
    """What DataTable's RowHighlighted carries as ``row_key`` (``.value`` is the key)."""

    value: str


class LineTable(ScrollView, can_focus=True):
    """Rows are (key, cells) with plain-text cells; the cursor follows its key across updates."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g", "scroll_top", "First row", show=False, id="table.first"),
        Binding("G", "scroll_bottom", "Last row", show=False, id="table.last"),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("home", "scroll_top", "First row", show=False),
        Binding("end", "scroll_bottom", "Last row", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "line-table--header",
        "line-table--cursor",
        "line-table--identity",
    }

    DEFAULT_CSS = """
    LineTable { background: $surface; color: $foreground; height: 1fr; border: round $panel; }
    LineTable:focus { border: heavy $accent; background-tint: $foreground 5%; }
    LineTable > .line-table--header { text-style: bold; background: $panel; color: $foreground; }
    LineTable > .line-table--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    LineTable:focus > .line-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    LineTable > .line-table--identity { color: $accent; text-style: bold; }
    """

    class RowHighlighted(Message):
        """The cursor is on another row (by the user, or by ``move_cursor``)."""

        def __init__(self, table: LineTable, key: str, index: int) -> None:
            super().__init__()
            self.table = table
            self.row_key = _Key(key)
            self.cursor_row = index

        @property
        def control(self) -> LineTable:
            return self.table

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._labels = tuple(label for _key, label in columns)
        self._rows: tuple[Row, ...] = ()
        self._index: dict[str, int] = {}
        self._widths: tuple[int, ...] = tuple(_width(lb) for lb in self._labels)
        self._marked: frozenset[str] = frozenset()
        self._lines: dict[int, str] = {}
        self._cursor = 0
        self._last_user_key: str | None = None

    # --- the DataTable-like reading side ------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor if self._rows else -1

    @property
    def row_keys(self) -> list[str]:
        return list(map(_KEY, self._rows))

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def get_row(self, key: str) -> list[str]:
        """The row's cells; the first keeps the identity mark or the blank room for it."""
        cells = list(self._rows[self._index[key]][1])
        if cells:
            cells[0] = (MARK if key in self._marked else NO_MARK) + cells[0]
        return cells

    def current_key(self) -> str | None:
        return self._rows[self._cursor][0] if self._rows else None

    def user_moved_to(self, key: str) -> bool:
        """True when a RowHighlighted for ``key`` comes from the user (the table has focus and
        the cursor went to another row), not from data refreshed under the cursor."""
        fresh = self.has_focus and key != self._last_user_key
        if self.has_focus:
            self._last_user_key = key
        return fresh

    # --- data ---------------------------------------------------------------------------------

    def sync_rows(self, rows: Sequence[Row]) -> None:
        """Hold exactly ``rows`` (key, cells, anything else) in that order. The cursor stays on
        its key; when its row went away it stays at the same height (on the row that took its
        place). Every pass over the rows runs in C (map, itemgetter): 50,000 rows cost ~15 ms."""
        old_key = self.current_key()
        new = tuple(rows)
        if new == self._rows:
            return
        self._rows = new
        self._index = dict(zip(map(_KEY, new), range(len(new)), strict=True))
        widths = [_width(lb) for lb in self._labels]
        cells = list(map(_CELLS, new))
        for col in range(min(map(len, cells), default=0)):
            column = list(map(itemgetter(col), cells))
            # len over the column runs in C; the cell width only where a cell is not ASCII
            ascii_only = all(map(str.isascii, column))
            widest = max(map(len if ascii_only else _width, column), default=0)
            widths[col] = max(widths[col], widest)
        widths[0] += len(MARK)  # room for the identity mark: marking never moves a column
        self._widths = tuple(widths)
        self._lines.clear()
        if old_key is not None and old_key in self._index:
            self._cursor = self._index[old_key]
        else:
            self._cursor = min(self._cursor, max(len(new) - 1, 0))
        self.virtual_size = Size(sum(w + 2 for w in self._widths), len(new) + 1)
        self._keep_cursor_visible()
        self.refresh()
        key = self.current_key()
        if key is not None and key != old_key:
            self.post_message(self.RowHighlighted(self, key, self._cursor))

    def set_marked(self, keys: set[str]) -> None:
        """Highlight these rows (the shared identity)."""
        marked = frozenset(keys)
        if marked != self._marked:
            self._marked = marked
            self._lines.clear()
            self.refresh()

    # --- cursor -------------------------------------------------------------------------------

    def move_cursor(self, *, row: int | None = None, animate: bool = False) -> None:
        if row is None or not self._rows:
            return
        row = max(0, min(row, len(self._rows) - 1))
        changed = row != self._cursor
        self._cursor = row
        self._keep_cursor_visible()
        self.refresh()
        if changed or not self._last_user_key:
            self.post_message(self.RowHighlighted(self, self._rows[row][0], row))

    def _body_height(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _keep_cursor_visible(self) -> None:
        top = round(self.scroll_y)
        body = self._body_height()
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + body:
            self.scroll_to(y=self._cursor - body + 1, animate=False, immediate=True)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_scroll_top(self) -> None:
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(row=len(self._rows) - 1)

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + self._body_height())

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - self._body_height())

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(row=round(self.scroll_y) + event.y - 1)

    # --- rendering ----------------------------------------------------------------------------

    def _line(self, i: int) -> str:
        line = self._lines.get(i)
        if line is None:
            key, cells = self._rows[i][:2]
            mark = MARK if key in self._marked else NO_MARK
            parts = [_pad(mark + cells[0], self._widths[0])] if cells else []
            parts += [_pad(c, w) for c, w in zip(cells[1:], self._widths[1:], strict=False)]
            line = " " + "  ".join(parts) + " "
            if len(self._lines) > 512:
                self._lines.clear()
            self._lines[i] = line
        return line

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("line-table--header")
            text = " " + "  ".join(
                _pad(lb if i else NO_MARK + lb, w)
                for i, (lb, w) in enumerate(zip(self._labels, self._widths, strict=True))
            )
        else:
            i = scroll_y + y - 1
            if i >= len(self._rows):
                return Strip.blank(width, base)
            text = self._line(i)
            style = base
            if self._rows[i][0] in self._marked:
                style = style + self.get_component_rich_style("line-table--identity")
            if i == self._cursor:
                style = style + self.get_component_rich_style("line-table--cursor")
        return Strip([Segment(text, style)]).crop_extend(scroll_x, scroll_x + width, style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
