"""The capture's DHCP view: transactions by xid, the server *named*, libvirt's lease checked.

One row per (xid, client MAC): the client resolved to its VM, the messages in order
(Discover/Offer/Request/Ack, Nak/Release/Decline), the offered IP, the server identifier
(option 54), the server's MAC, the interface the Offer arrived on, and who the server is
("libvirt's dnsmasq on virbr0 (network default)", "the LAN's DHCP server behind ens9").
Under the table, the selected transaction in full, with the check against libvirt's lease.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.markup import escape
from textual.widgets import DataTable, Static

from kvmtui.capture.dhcp import DhcpMessage, DhcpTransaction, LeaseCheck, missing_words

ABBR = {
    "discover": "Discover",
    "offer": "Offer",
    "request": "Request",
    "ack": "Ack",
    "nak": "Nak",
    "release": "Release",
    "decline": "Decline",
    "inform": "Inform",
    "solicit": "Solicit",
    "advertise": "Advertise",
    "reply": "Reply",
    "renew": "Renew",
    "rebind": "Rebind",
    "confirm": "Confirm",
    "information-request": "Info-Req",
}
LEASE_MARK = {"match": "✓", "mismatch": "✗", "none": "-", "unchecked": "?"}


def tx_key(tx: DhcpTransaction) -> str:
    return f"{'6-' if tx.v6 else ''}{tx.xid:08x}-{tx.client}"


def xid_text(tx: DhcpTransaction) -> str:
    return f"0x{tx.xid:06x} v6" if tx.v6 else f"0x{tx.xid:08x}"


def offer_dev(tx: DhcpTransaction) -> str:
    for m in tx.messages:
        if m.type in ("offer", "advertise"):
            return m.dev
    return tx.server.dev if tx.server is not None and tx.server.dev else "—"


def in_time_order(tx: DhcpTransaction) -> list[DhcpMessage]:
    return sorted(tx.messages, key=lambda m: m.time)


def outcome_text(tx: DhcpTransaction) -> str:
    """Only what was seen: 'bound', 'no Offer seen', 'Offer seen, no Request seen'."""
    types = {m.type for m in tx.messages}
    if types & {"ack", "nak", "decline"} or tx.acked:
        return tx.outcome
    if tx.v6 and types & {"solicit", "request", "advertise"}:
        return missing_words(tx) or tx.outcome
    if "offer" not in types and types & {"discover"}:
        return "no Offer seen"
    if "offer" in types and "request" not in types:
        return "Offer seen, no Request seen"
    if "request" in types:
        return "Request seen, no Ack seen"
    return tx.outcome


def server_words(tx: DhcpTransaction) -> str:
    """The server in the seed's terms: 'server 52:54:00:.. = virbr0's own MAC: libvirt's
    dnsmasq of network default' (the words the transaction gives, else its name)."""
    s = tx.server
    if s is None:
        return "no Offer seen" if not tx.acked else "server not identified"
    words = str(getattr(s, "words", "") or s.name)
    who = s.mac or s.ip or "?"
    dev = offer_dev(tx)
    offer = "Advertise" if tx.v6 else "Offer"
    arrived = f", its {offer} arrived on {dev}" if dev != "—" else ""
    return f"server {who} = {words}{arrived}"


def tx_cells(tx: DhcpTransaction, lease: LeaseCheck | None) -> tuple[str, ...]:
    s = tx.server
    msgs = " ".join(ABBR.get(m.type, m.type) for m in in_time_order(tx))
    if lease is None:
        check = "checking…" if tx.acked else "—"
    else:
        check = f"{LEASE_MARK.get(lease.status, '?')} {lease.status}"
    return (
        xid_text(tx),
        tx.vm or tx.client,
        msgs,
        tx.offered_ip or "—",
        (s.ip or "—") if s else "—",
        (s.mac or "—") if s else "—",
        offer_dev(tx),
        s.name if s else outcome_text(tx),
        check,
    )


def tx_detail(tx: DhcpTransaction, lease: LeaseCheck | None) -> str:
    s = tx.server
    who = f"{tx.vm} ({tx.client})" if tx.vm else f"{tx.client} (not a known VM)"
    head = f"{'DHCPv6 ' if tx.v6 else ''}xid {xid_text(tx).split()[0]}"
    lines = [f"[b]{head}[/b]  client {escape(who)}  →  {escape(outcome_text(tx))}"]
    t0 = min((m.time for m in tx.messages), default=0.0)
    for m in in_time_order(tx):
        seen = " → ".join(m.seen_on)
        ip = f" {m.yiaddr}" if m.yiaddr not in ("", "0.0.0.0") else ""
        sid = f" server-id {m.server_id}" if m.server_id else ""
        lines.append(
            f"  {step_time(m.time - t0):>7} {ABBR.get(m.type, m.type):<8} from {m.src_mac}"
            f"{escape(ip)}{escape(sid)}  seen on {escape(seen)}"
        )
    lines.append(f"[b]{escape(server_words(tx))}[/b]")
    if s is not None and tx.v6:
        lines.append(f"  server address {s.ip or '?'}, MAC {s.mac or '?'} (its DHCPv6 source)")
    elif s is not None:
        lines.append(f"  server id (option 54) {s.ip or '?'}, MAC {s.mac or '?'}")
    if lease is not None:
        mark = {"match": "$success", "mismatch": "$error"}.get(lease.status, "$text-muted")
        lines.append(f"[{mark}]lease check: {escape(lease.detail)}[/]")
    elif tx.acked:
        lines.append("lease check: asking libvirt…")
    return "\n".join(lines)


COLUMNS = (
    ("xid", "xid"),
    ("vm", "client (VM)"),
    ("msgs", "messages"),
    ("offered", "offered IP"),
    ("sid", "server id (54)"),
    ("smac", "server MAC"),
    ("dev", "Offer on"),
    ("server", "server"),
    ("lease", "libvirt lease"),
)


# at 80x24 the table keeps these (the detail pane under it has server id, MAC and Offer-on)
NARROW_COLUMNS = ("xid", "vm", "msgs", "offered", "server", "lease")
NARROW_BELOW = 100


def step_time(dt: float) -> str:
    return f"+{dt * 1000:.0f}ms" if dt < 10 else f"+{dt:.1f}s"


class DhcpTable(DataTable[str]):
    """The transactions, with the keys of every table: j/k, g/G."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="capture.dhcp.down"),
        Binding("k", "cursor_up", "Up", show=False, id="capture.dhcp.up"),
        Binding("g", "scroll_top", "First", show=False, id="capture.dhcp.first"),
        Binding("G", "scroll_bottom", "Last", show=False, id="capture.dhcp.last"),
    ]

    def action_scroll_top(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_scroll_bottom(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)


class CaptureDhcp(Vertical):
    """``show_transactions`` with every transaction known and the lease checks done so far."""

    DEFAULT_CSS = """
    CaptureDhcp { height: 1fr; }
    CaptureDhcp DataTable { height: 1fr; }
    CaptureDhcp #dhcp-detail-scroll { height: auto; max-height: 50%; border: round $panel;
                                      padding: 0 1; }
    CaptureDhcp #dhcp-detail-scroll:focus { border: heavy $accent; }
    CaptureDhcp #dhcp-detail { height: auto; }
    CaptureDhcp #dhcp-empty { padding: 0 1; color: $text-muted; height: auto; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._tx: dict[str, DhcpTransaction] = {}
        self._lease: dict[str, LeaseCheck] = {}
        self._cells: dict[str, tuple[str, ...]] = {}
        self._shown: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(
            "No DHCP seen yet. Renew the VM's lease (or boot it) to watch the exchange; the "
            "server is named from the Offer: its server id, its MAC and where it came in.",
            id="dhcp-empty",
        )
        yield DhcpTable(cursor_type="row", id="dhcp-table")
        with VerticalScroll(id="dhcp-detail-scroll"):
            yield Static("", id="dhcp-detail")

    def on_mount(self) -> None:
        self._columns(self.app.size.width < NARROW_BELOW)

    def on_resize(self) -> None:
        self._columns(self.app.size.width < NARROW_BELOW)

    def _columns(self, narrow: bool) -> None:
        keys = NARROW_COLUMNS if narrow else tuple(k for k, _ in COLUMNS)
        table = self.table
        if self._shown == keys:
            return
        self._shown = keys
        table.clear(columns=True)
        for key, label in COLUMNS:
            if key in keys:
                table.add_column(label, key=key)
        cells, self._cells = self._cells, {}
        for key in cells:
            self._add(key, self._tx[key])

    def _pick(self, cells: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c for (k, _), c in zip(COLUMNS, cells, strict=True) if k in self._shown)

    def _add(self, key: str, tx: DhcpTransaction) -> None:
        cells = tx_cells(tx, self._lease.get(key))
        old = self._cells.get(key)
        if old is None:
            self.table.add_row(*self._pick(cells), key=key)
        elif old != cells:
            for (ck, _), new, prev in zip(COLUMNS, cells, old, strict=True):
                if new != prev and ck in self._shown:
                    self.table.update_cell(key, ck, new, update_width=True)
        self._cells[key] = cells

    @property
    def table(self) -> DhcpTable:
        return self.query_one("#dhcp-table", DhcpTable)

    def show_transactions(
        self, txs: Iterable[DhcpTransaction], leases: dict[str, LeaseCheck]
    ) -> None:
        self._lease = dict(leases)
        with self.app.batch_update():
            for tx in txs:
                key = tx_key(tx)
                self._tx[key] = tx
                self._add(key, tx)
        self.query_one("#dhcp-empty").display = not self._tx
        self._show_detail()

    def clear_transactions(self) -> None:
        self._tx.clear()
        self._cells.clear()
        self.table.clear()
        self.query_one("#dhcp-empty").display = True
        self._show_detail()

    def current(self) -> DhcpTransaction | None:
        table = self.table
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return None
        return self._tx.get(str(key.value))

    def row_text(self, tx: DhcpTransaction) -> list[str]:
        return [str(c) for c in self.table.get_row(tx_key(tx))]

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def _show_detail(self) -> None:
        tx = self.current()
        detail = self.query_one("#dhcp-detail", Static)
        self.query_one("#dhcp-detail-scroll").display = tx is not None
        if tx is not None:
            detail.update(tx_detail(tx, self._lease.get(tx_key(tx))))
