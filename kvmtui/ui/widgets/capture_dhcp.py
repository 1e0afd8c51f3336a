"""The capture's DHCP view: transactions by xid, the server *named*, libvirt's lease checked.

One row per (xid, client MAC): the client resolved to its VM, the messages in order
(Discover/Offer/Request/Ack, Nak/Release/Decline), the offered IP, the server identifier
(option 54), the server's MAC, the interface the Offer arrived on, and who the server is
("libvirt's dnsmasq on virbr0 (network default)", "the LAN's DHCP server behind ens9").
Under the table, the selected transaction in full, with the check against libvirt's lease.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widgets import DataTable, Static

from kvmtui.capture.dhcp import DhcpTransaction, LeaseCheck

ABBR = {
    "discover": "Discover",
    "offer": "Offer",
    "request": "Request",
    "ack": "Ack",
    "nak": "Nak",
    "release": "Release",
    "decline": "Decline",
    "inform": "Inform",
}
LEASE_MARK = {"match": "✓", "mismatch": "✗", "none": "-", "unchecked": "?"}


def tx_key(tx: DhcpTransaction) -> str:
    return f"{tx.xid:08x}-{tx.client}"


def offer_dev(tx: DhcpTransaction) -> str:
    for m in tx.messages:
        if m.type == "offer":
            return m.dev
    return tx.server.dev if tx.server is not None and tx.server.dev else "—"


def tx_cells(tx: DhcpTransaction, lease: LeaseCheck | None) -> tuple[str, ...]:
    s = tx.server
    msgs = " ".join(ABBR.get(m.type, m.type) for m in tx.messages)
    if lease is None:
        check = "checking…" if tx.acked else "—"
    else:
        check = f"{LEASE_MARK.get(lease.status, '?')} {lease.status}"
    return (
        f"0x{tx.xid:08x}",
        tx.vm or tx.client,
        msgs,
        tx.offered_ip or "—",
        (s.ip or "—") if s else "—",
        (s.mac or "—") if s else "—",
        offer_dev(tx),
        s.name if s else "no server answered yet",
        check,
    )


def tx_detail(tx: DhcpTransaction, lease: LeaseCheck | None) -> str:
    s = tx.server
    who = f"{tx.vm} ({tx.client})" if tx.vm else f"{tx.client} (not a known VM)"
    lines = [f"[b]xid 0x{tx.xid:08x}[/b]  client {escape(who)}  →  {escape(tx.outcome)}"]
    for m in tx.messages:
        seen = " → ".join(m.seen_on)
        ip = f" {m.yiaddr}" if m.yiaddr not in ("", "0.0.0.0") else ""
        sid = f" server-id {m.server_id}" if m.server_id else ""
        lines.append(
            f"  {ABBR.get(m.type, m.type):<8} from {m.src_mac}{escape(ip)}{escape(sid)}"
            f"  seen on {escape(seen)}"
        )
    if s is not None:
        lines.append(
            f"server: [b]{escape(s.name)}[/b] — IP {s.ip or '?'} (option 54), MAC {s.mac or '?'}, "
            f"its Offer arrived on {escape(offer_dev(tx))}"
        )
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


class CaptureDhcp(Vertical):
    """``show_transactions`` with every transaction known and the lease checks done so far."""

    DEFAULT_CSS = """
    CaptureDhcp { height: 1fr; }
    CaptureDhcp DataTable { height: 1fr; }
    CaptureDhcp #dhcp-detail { height: auto; max-height: 50%; border: round $panel;
                               padding: 0 1; }
    CaptureDhcp #dhcp-empty { padding: 0 1; color: $text-muted; height: auto; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._tx: dict[str, DhcpTransaction] = {}
        self._lease: dict[str, LeaseCheck] = {}
        self._cells: dict[str, tuple[str, ...]] = {}

    def compose(self) -> ComposeResult:
        yield Static(
            "No DHCP seen yet. Renew the VM's lease (or boot it) to watch the exchange; the "
            "server is named from the Offer: its server id, its MAC and where it came in.",
            id="dhcp-empty",
        )
        table: DataTable[str] = DataTable(cursor_type="row", id="dhcp-table")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="dhcp-detail")

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#dhcp-table", DataTable)

    def show_transactions(
        self, txs: Iterable[DhcpTransaction], leases: dict[str, LeaseCheck]
    ) -> None:
        table = self.table
        self._lease = dict(leases)
        with self.app.batch_update():
            for tx in txs:
                key = tx_key(tx)
                self._tx[key] = tx
                cells = tx_cells(tx, self._lease.get(key))
                old = self._cells.get(key)
                if old is None:
                    table.add_row(*cells, key=key)
                elif old != cells:
                    for (ck, _), new, prev in zip(COLUMNS, cells, old, strict=True):
                        if new != prev:
                            table.update_cell(key, ck, new, update_width=True)
                self._cells[key] = cells
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
        detail.display = tx is not None
        if tx is not None:
            detail.update(tx_detail(tx, self._lease.get(tx_key(tx))))
