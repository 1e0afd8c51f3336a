"""A DataTable with vim-style movement, keyed rows diffed in place, and identity highlighting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

Cell = str | Text


class VimTable(DataTable[Cell]):
    """Rows are keyed; ``sync_rows`` diffs them by key inside ``batch_update`` so the cursor
    stays on the same row while the data churns."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g", "scroll_top", "First row", show=False, id="table.first"),
        Binding("G", "scroll_bottom", "Last row", show=False, id="table.last"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"vim-table--identity"}

    DEFAULT_CSS = """
    VimTable { height: auto; max-height: 100%; }
    VimTable > .vim-table--identity { color: $accent; text-style: bold; }
    """

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self._column_spec = list(columns)
        self._row_cells: dict[str, tuple[Cell, ...]] = {}
        self._marked: set[str] = set()
        self._last_user_key: str | None = None
        for key, label in self._column_spec:
            self.add_column(label, key=key)

    def user_moved_to(self, key: str) -> bool:
        """True when a RowHighlighted for ``key`` comes from the user (the table has focus and
        the cursor went to another row), not from data being refreshed under the cursor."""
        fresh = self.has_focus and key != self._last_user_key
        if self.has_focus:
            self._last_user_key = key
        return fresh

    @property
    def row_keys(self) -> list[str]:
        return [str(r.key.value) for r in self.ordered_rows]

    def current_key(self) -> str | None:
        if self.row_count == 0 or self.cursor_row < 0:
            return None
        try:
            key: RowKey = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # cursor beyond rows while they are replaced
            return None
        return str(key.value) if key.value is not None else None

    def _styled(self, key: str, cells: tuple[Cell, ...]) -> tuple[Cell, ...]:
        """The first column always has room for the identity mark, so marking a row never
        changes a column's width (no jumping columns)."""
        if not cells:
            return cells
        first = cells[0]
        if key not in self._marked:
            return (Text("  ") + (Text(first) if isinstance(first, str) else first), *cells[1:])
        style: Style = self.get_component_rich_style("vim-table--identity", partial=True)
        out: list[Cell] = []
        for c in cells:
            t = Text(c) if isinstance(c, str) else c.copy()
            t.stylize(style)
            out.append(t)
        head = out[0]
        assert isinstance(head, Text)
        out[0] = Text("◆ ", style=style) + head
        return tuple(out)

    def sync_rows(self, rows: Sequence[tuple[str, tuple[Cell, ...]]]) -> None:
        """Make the table hold exactly ``rows`` (key, cells), in that order, touching only what
        changed."""
        wanted = dict(rows)
        cursor_key = self.current_key()
        cursor_index = self.cursor_row
        with self.app.batch_update():
            if any(key not in wanted for key in self._row_cells):
                # rows went away: DataTable never narrows a column when rows are removed, so
                # rebuild (inside batch_update: no flicker) and put the cursor back by key
                self.clear(columns=True)
                for key, label in self._column_spec:
                    self.add_column(label, key=key)
                self._row_cells = {}
            col_keys = [k for k, _ in self._column_spec]
            for key, cells in rows:
                old = self._row_cells.get(key)
                styled = self._styled(key, cells)
                if old is None:
                    self.add_row(*styled, key=key)
                elif old != cells:
                    for ck, new, prev in zip(col_keys, styled, self._styled(key, old), strict=True):
                        if new != prev:
                            self.update_cell(key, ck, new, update_width=self._widens(ck, new))
                self._row_cells[key] = cells
            if self.row_keys != [k for k, _ in rows]:
                self._reorder({key: i for i, (key, _) in enumerate(rows)})
            if cursor_key is not None and cursor_key in wanted:
                self.move_cursor(row=self.get_row_index(cursor_key), animate=False)
            elif cursor_key is not None and self.row_count:
                # its row went away: stay at the same height (the row that took its place)
                self.move_cursor(row=min(cursor_index, self.row_count - 1), animate=False)

    def _widens(self, column_key: str, cell: Cell) -> bool:
        """Only a cell wider than its column asks DataTable to re-measure: a narrower one would
        make it rescan the whole column (quadratic on a big FDB). Columns narrow on rebuild."""
        width = cell.cell_len if isinstance(cell, Text) else Text(cell).cell_len
        column = self.columns.get(ColumnKey(column_key))
        return column is None or width > column.content_width

    def _reorder(self, order: dict[str, int]) -> None:
        # DataTable.sort hands the key function cell values, not row keys: map each row's
        # text back to its wanted position (rows are unique by content as well as by key).
        def text(row: object) -> tuple[str, ...]:
            return tuple(str(c) for c in row)  # type: ignore[attr-defined]

        lookup = {text(self.get_row(k)): order.get(k, 1 << 30) for k in self.row_keys}
        self.sort(key=lambda row: lookup.get(text(row), 1 << 30))

    def set_marked(self, keys: set[str]) -> None:
        """Highlight these rows (the shared identity), re-styling only rows whose mark changed."""
        if keys == self._marked:
            return
        changed = (keys ^ self._marked) & set(self._row_cells)
        self._marked = set(keys)
        col_keys = [k for k, _ in self._column_spec]
        with self.app.batch_update():
            for key in changed:
                for ck, cell in zip(col_keys, self._styled(key, self._row_cells[key]), strict=True):
                    # the mark's room is always reserved: widths cannot change here
                    self.update_cell(key, ck, cell, update_width=False)
