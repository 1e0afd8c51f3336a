"""The MAC table of the selected bridge: who is behind each MAC the bridge learned."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from itertools import compress, repeat
from operator import is_
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Input, Static

from kvmtui.core.model import Bridge, FdbEntry, HostSnapshot
from kvmtui.ui import fmt
from kvmtui.ui.identity import Identity, resolve
from kvmtui.ui.widgets.base import Pane
from kvmtui.ui.widgets.line_table import LineTable

COLUMNS = [
    ("mac", "MAC"),
    ("port", "Port"),
    ("owner", "Owner"),
    ("ip", "IP"),
    ("kind", "Kind"),
    ("age", "Age"),
]


def row_key(e: FdbEntry) -> str:
    return f"{e.mac}@{e.port}@{e.vlan if e.vlan is not None else ''}"


KIND_SHORT = {"learned": "learned", "static": "static", "permanent": "perm"}
NO_AGE = frozenset({"static", "permanent"})  # entries that never age out show no age


def routers(snap: HostSnapshot | None) -> dict[str, str]:
    """The gateways of the host's routes (every table), by IP: a neighbour the host routes
    through is a router, named so in its MAC row; the default route's gateway says so."""
    out: dict[str, str] = {}
    for r in snap.routes if snap is not None else ():
        if r.gateway:
            if r.dst == "default":
                out[r.gateway] = "LAN router (default gw)"
            else:
                out.setdefault(r.gateway, "LAN router")
    return out


def owner_text(e: FdbEntry, bridge: str = "", gws: Mapping[str, str] | None = None) -> str:
    """Who is behind the MAC, in the seed's words. A host device named like the port is that
    port's (or the bridge's) own address: the kernel lists it as a permanent entry. A LAN
    neighbour is named by its host name when one is known; its IP is in the IP column."""
    o = e.owner
    if o.kind == "vm":
        return f"VM {o.name}" + (f" ({o.nic})" if o.nic and o.nic != e.port else "")
    if o.kind == "host":
        if o.name != e.port:
            return f"host {o.name}"
        return "bridge's own MAC" if e.port == bridge else "port's own MAC"
    if o.kind == "neighbour":
        if gws and o.ip and o.ip in gws:
            return gws[o.ip]
        return "LAN neighbour" + (f" {o.name}" if o.name and o.name != o.ip else "")
    return o.label()


def row_cells(
    e: FdbEntry, bridge: str = "", gws: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    kind = KIND_SHORT.get(e.kind, e.kind)
    age = "" if e.kind in NO_AGE else fmt.age(e.age_s)
    return (e.mac, e.port, owner_text(e, bridge, gws), e.owner.ip or "", kind, age)


def entry_matches(cells: tuple[str, ...], needle: str) -> bool:
    return any(needle in c.lower() for c in cells)


# key, cells, entry, order: a row is also what LineTable holds (it reads [0] and [1] only)
_Row = tuple[str, tuple[str, ...], FdbEntry, tuple[str, bool, str]]
_Index = dict[str, dict[str, list[str]]]


def _order(row: _Row) -> tuple[str, bool, str]:
    return row[3]


def _drop_sorted(ordered: list[_Row], row: _Row) -> None:
    """Remove ``row`` (that very object) from the list sorted by ``_order``."""
    i = bisect.bisect_left(ordered, row[3], key=_order)
    while i < len(ordered) and ordered[i][3] == row[3]:
        if ordered[i] is row:
            del ordered[i]
            return
        i += 1
    ordered.remove(row)  # not where its order says (should not happen): find it anyway


def _index_rows(index: _Index, rows: Sequence[_Row], add: bool) -> None:
    """Add (or remove) the rows' keys under their MAC, port, IP and VM."""
    for key, _cells, e, _o in rows:
        spots = [("mac", e.mac.lower()), ("port", e.port)]
        if e.owner.ip:
            spots.append(("ip", e.owner.ip))
        if e.owner.kind == "vm":
            spots.append(("vm", e.owner.name))
        for field, value in spots:
            if add:
                index[field].setdefault(value, []).append(key)
                continue
            keys = index[field].get(value)
            if keys is not None and key in keys:
                keys.remove(key)


class MacTable(LineTable):
    pass


class MacPane(Pane):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="mac.filter"),
        Binding("b", "next_bridge(1)", "Next bridge", id="mac.next_bridge"),
        Binding("B", "next_bridge(-1)", "Prev bridge", show=False, id="mac.prev_bridge"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="mac.clear_filter"),
    ]
    DEFAULT_CSS = """
    MacPane { layout: vertical; }
    MacPane #mac-title { height: 1; padding: 0 1; background: $panel; }
    MacPane #mac-filter { display: none; height: 3; }
    MacPane.-filtering #mac-filter { display: block; }
    MacPane #mac-note { display: none; padding: 1 2; color: $warning; }
    MacPane.-note #mac-note { display: block; }
    MacPane MacTable { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.filter_text = ""
        self._entries: dict[str, FdbEntry] = {}
        self._cache: dict[int, _Row] = {}
        self._sorted: list[_Row] = []
        self._title = ""
        self._index: _Index | None = None
        # what the last _rows_of changed: (rows gone, rows new), None when it rebuilt them all
        self._delta: tuple[list[_Row], list[_Row]] | None = None
        self._entries_of: str | None = None  # the bridge _entries holds, unfiltered
        self._cache_sig: tuple[str, tuple[tuple[str, str], ...]] | None = None

    def compose(self) -> ComposeResult:
        yield Static("MAC table", id="mac-title")
        yield Input(placeholder="filter: MAC, port, owner, IP…", id="mac-filter")
        yield Static("", id="mac-note")
        yield MacTable(COLUMNS, id="mac-table")

    @property
    def table(self) -> MacTable:
        return self.query_one(MacTable)

    def main_widget(self) -> Widget | None:
        return self.table

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "selected_bridge", lambda _: self._refresh(), init=False)

    def show_snapshot(self, snap: HostSnapshot | None) -> None:
        self._refresh()

    def _bridge(self) -> tuple[str | None, Bridge | None]:
        snap = self.kvm.snapshot
        name = self.kvm.selected_bridge
        if snap is None:
            return name, None
        if name is None and snap.bridges:
            name = snap.bridges[0].name
            self.kvm.selected_bridge = name
        return name, snap.bridge(name) if name else None

    def _refresh(self) -> None:
        snap = self.kvm.snapshot
        name, bridge = self._bridge()
        title = self.query_one("#mac-title", Static)
        note = self.query_one("#mac-note", Static)
        self._title = ""
        if snap is None:
            title.update("MAC table")
            self._note("Waiting for the host model…")
            self.table.sync_rows([])
            return
        if bridge is None:
            self.table.sync_rows([])
            self._entries = {}
            self._index = None
            self._entries_of = None
            if name is None:
                title.update("MAC table")
                self._note("No bridges on this host: nothing learns MAC addresses here.")
            else:
                title.update(f"MAC table of [b]{escape(name)}[/b] [$error](gone)[/]")
                others = ", ".join(b.name for b in snap.bridges) or "none"
                self._note(
                    f"Bridge {escape(name)} is no longer on this host (it vanished). "
                    f"Press b for another bridge ({escape(others)})."
                )
            return
        entries = self._rows_of(snap, bridge)
        delta = self._delta if not self.filter_text else None
        if delta is not None and self._entries_of is bridge.name:
            # a live change to a few of 50,000 entries: the key map and the identity index
            # are patched, not made again (each full pass cost the UI thread ~50 ms)
            gone, new = delta
            for row in gone:
                if self._entries.get(row[0]) is row[2]:
                    del self._entries[row[0]]
            self._entries.update((row[0], row[2]) for row in new)
            if self._index is not None:
                _index_rows(self._index, gone, add=False)
                _index_rows(self._index, new, add=True)
        else:
            self._entries = dict(zip([r[0] for r in entries], [r[2] for r in entries], strict=True))
            self._index = None
        self._entries_of = bridge.name if not self.filter_text else None
        self.table.sync_rows(entries)
        shown = f"{len(entries)} of {len(bridge.fdb)}" if self.filter_text else str(len(entries))
        flt = f" · filter [b]{escape(self.filter_text)}[/b]" if self.filter_text else ""
        self._title = f"MAC table of [b]{escape(bridge.name)}[/b] · {shown} entries{flt}"
        self._show_title()
        if not bridge.fdb:
            self._note("This bridge has learned no MAC address yet.")
        elif not entries:
            self._note("No entry matches the filter (Esc clears it).")
        else:
            note.update("")
            self.remove_class("-note")
        self.show_identity(self.kvm.focus_identity)

    def _show_title(self) -> None:
        """The title, with the cursor's row number: where one is in 50,000 rows."""
        row = self.table.cursor_row
        at = f" · row {row + 1}" if row >= 0 and self._entries else ""
        self.query_one("#mac-title", Static).update(
            f"{self._title}{at}   [dim]b: next bridge  /: filter[/]"
        )

    def _rows_of(self, snap: HostSnapshot, bridge: Bridge) -> list[_Row]:
        """The bridge's rows, filtered and sorted. A row's text is made once per FdbEntry: the
        snapshot keeps the entries that did not change (the same objects), so a live change
        to one of 50,000 entries formats one row, not all of them, and the sorted list is
        patched (the rows that went dropped, the new ones inserted in place), not re-sorted.
        The rows are found by the entries' ids in C-speed passes (the cache holds each row,
        and so its entry: an id cannot be reused while it is cached)."""
        gws = routers(snap)
        sig = (bridge.name, tuple(sorted(gws.items())))
        if sig != self._cache_sig:
            self._cache_sig = sig
            self._cache = {}
            self._sorted = []
        cache = self._cache
        fdb = bridge.fdb
        ids = list(map(id, fdb))
        rows: list[_Row | None] = list(map(cache.get, ids))
        added: list[_Row] = []
        for i in compress(range(len(rows)), map(is_, rows, repeat(None))):
            e = fdb[i]
            row = (
                row_key(e),
                row_cells(e, bridge.name, gws),
                e,
                (e.port, e.kind != "learned", e.mac),
            )
            rows[i] = row
            added.append(row)
        fresh: dict[int, _Row] = dict(zip(ids, rows, strict=True))  # type: ignore[arg-type]
        gone = (
            [cache[i] for i in cache.keys() - fresh.keys()]
            if len(cache) + len(added) != len(fresh)
            else []
        )
        self._delta = None
        if self._sorted and len(added) + len(gone) < 2000:
            ordered = list(self._sorted)
            for row in gone:
                _drop_sorted(ordered, row)
            for row in added:
                bisect.insort(ordered, row, key=_order)
            self._delta = (gone, added)
        else:
            ordered = sorted(fresh.values(), key=_order)
        self._cache = fresh
        self._sorted = ordered
        if not self.filter_text:
            return ordered
        needle = self.filter_text.lower()
        return [r for r in ordered if entry_matches(r[1], needle)]

    def _note(self, text: str) -> None:
        self.query_one("#mac-note", Static).update(text)
        self.add_class("-note")

    def show_identity(self, identity: Identity | None) -> None:
        """Mark the rows of the shared identity, looked up by MAC, port, VM and IP in an
        index made once per refresh (a cursor key must not scan 50,000 entries)."""
        marked: set[str] = set()
        if identity is not None:
            if self._index is None:
                self._index = self._build_index()
            by = self._index
            for mac in identity.macs:
                marked.update(by["mac"].get(mac, ()))
            for tap in identity.taps:
                marked.update(by["port"].get(tap, ()))
            for ip in identity.ips:
                marked.update(by["ip"].get(ip, ()))
            if identity.vm is not None:
                marked.update(by["vm"].get(identity.vm, ()))
        self.table.set_marked(marked)

    def _build_index(self) -> _Index:
        index: _Index = {"mac": {}, "port": {}, "ip": {}, "vm": {}}
        mac, port, ip, vm = index["mac"], index["port"], index["ip"], index["vm"]
        for key, e in self._entries.items():
            mac.setdefault(e.mac.lower(), []).append(key)
            port.setdefault(e.port, []).append(key)
            if e.owner.ip:
                ip.setdefault(e.owner.ip, []).append(key)
            if e.owner.kind == "vm":
                vm.setdefault(e.owner.name, []).append(key)
        return index

    @on(LineTable.RowHighlighted, "#mac-table")
    def _row(self, event: LineTable.RowHighlighted) -> None:
        key = str(event.row_key.value)
        if self._title:
            self._show_title()
        e = self._entries.get(key)
        if e is None or not self.table.user_moved_to(key):
            return
        o = e.owner
        snap = self.kvm.snapshot
        if o.kind == "vm":
            ident = resolve(snap, vm=o.name, mac=e.mac)
        elif o.kind == "host" and o.nic:
            ident = resolve(snap, mac=e.mac, tap=o.nic)
        else:
            ident = resolve(snap, mac=e.mac, ip=o.ip)
        self.kvm.focus_identity = ident

    # --- actions -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.add_class("-filtering")
        self.query_one("#mac-filter", Input).focus()

    def action_clear_filter(self) -> None:
        inp = self.query_one("#mac-filter", Input)
        inp.value = ""
        self.filter_text = ""
        self.remove_class("-filtering")
        self.table.focus()
        self._refresh()

    @on(Input.Changed, "#mac-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._refresh()

    @on(Input.Submitted, "#mac-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not self.filter_text:
            self.remove_class("-filtering")
        self.table.focus()

    def action_next_bridge(self, step: int) -> None:
        snap = self.kvm.snapshot
        if snap is None or not snap.bridges:
            return
        names = [b.name for b in snap.bridges]
        cur = self.kvm.selected_bridge
        i = names.index(cur) if cur in names else -1
        self.kvm.selected_bridge = names[(i + step) % len(names)]

    def select_mac(self, mac: str) -> bool:
        for key, e in self._entries.items():
            if e.mac == mac:
                self.table.move_cursor(row=self.table.get_row_index(key))
                return True
        return False
