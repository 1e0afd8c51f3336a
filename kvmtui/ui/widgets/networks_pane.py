"""The Networks pane: libvirt networks, their DHCP leases, and what each mode means for a packet."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Static

from kvmtui.core.model import HostSnapshot, Network
from kvmtui.ui import fmt
from kvmtui.ui.identity import Identity, resolve
from kvmtui.ui.widgets.base import Pane
from kvmtui.ui.widgets.vim_table import VimTable

NET_COLUMNS = [
    ("name", "Network"),
    ("mode", "Mode"),
    ("bridge", "Bridge"),
    ("range", "Range"),
    ("leases", "Leases"),
    ("state", "State"),
]
LEASE_COLUMNS = [
    ("mac", "MAC"),
    ("ip", "IP"),
    ("host", "Hostname"),
    ("expiry", "Expires"),
]


def net_range(net: Network) -> str:
    for a in net.addresses:
        if a.ranges:
            r = a.ranges[0]
            return f"{r.start}-{r.end.rsplit('.', 1)[-1]}" if "." in r.end else f"{r.start}-{r.end}"
        return f"{a.address}/{a.prefix}"
    return "—" if net.mode != "bridge" else "from the LAN"


class NetworksPane(Pane):
    DEFAULT_CSS = """
    NetworksPane { layout: vertical; }
    NetworksPane #net-table { height: auto; max-height: 8; }
    NetworksPane #net-side { height: 1fr; }
    NetworksPane #net-explain { padding: 0 1; height: auto; }
    NetworksPane #lease-title { padding: 0 1; background: $panel; height: 1; }
    NetworksPane #lease-table { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._current: str | None = None

    def compose(self) -> ComposeResult:
        yield VimTable(NET_COLUMNS, id="net-table")
        with Vertical(id="net-side"):
            yield Static("", id="net-explain")
            yield Static("DHCP leases", id="lease-title")
            yield VimTable(LEASE_COLUMNS, id="lease-table")

    def main_widget(self) -> Widget | None:
        return self.query_one("#net-table", VimTable)

    def on_mount(self) -> None:
        super().on_mount()
        # lease expiry counts down: re-render with the counters' tick (about once a second)
        self.watch(self.app, "rates", lambda _: self._show_current(), init=False)

    def show_snapshot(self, snap: HostSnapshot | None) -> None:
        table = self.query_one("#net-table", VimTable)
        if snap is None:
            table.sync_rows([])
            self.query_one("#net-explain", Static).update("Waiting for the host model…")
            return
        rows = []
        for n in snap.networks:
            state = ("active" if n.active else "inactive") + (" · auto" if n.autostart else "")
            rows.append(
                (
                    n.name,
                    (
                        n.name,
                        fmt.mode_label(n.mode),
                        n.bridge or "—",
                        net_range(n),
                        str(len(n.leases)),
                        state,
                    ),
                )
            )
        table.sync_rows(rows)
        if self._current is None or snap.network(self._current) is None:
            self._current = snap.networks[0].name if snap.networks else None
        self._show_current()

    def _show_current(self) -> None:
        snap = self.kvm.snapshot
        explain = self.query_one("#net-explain", Static)
        leases = self.query_one("#lease-table", VimTable)
        title = self.query_one("#lease-title", Static)
        net = snap.network(self._current) if snap and self._current else None
        if snap is None:
            return
        if net is None:
            explain.update(
                "No libvirt networks: libvirt is unreachable (see the line above)."
                if any(p.source == "libvirt" for p in snap.problems)
                else "No libvirt networks on this host."
            )
            title.update("DHCP leases")
            leases.sync_rows([])
            return
        head = f"[b]{escape(net.name)}[/b]: {fmt.mode_label(net.mode)}"
        if net.bridge:
            head += f" on {escape(net.bridge)}"
        if net.nat_rule is not None:
            ok = "[$success]seen[/]" if net.nat_rule else "[$error]missing[/]"
            head += f" · NAT rule {ok}"
        explain.update(f"{head}\n{escape(fmt.explain(net.mode))}")
        now = self.kvm.clock()
        rows = [
            (
                f"{lease.mac}/{lease.ip}",
                (lease.mac, lease.ip, lease.hostname or "", fmt.expiry(lease.expiry, now)),
            )
            for lease in sorted(net.leases, key=lambda x: x.ip)
        ]
        if net.mode == "bridge" and not rows:
            title.update("DHCP leases: none here; the LAN's own DHCP server hands them out")
        else:
            title.update(f"DHCP leases of {escape(net.name)} ({len(rows)})")
        leases.sync_rows(rows)
        self.show_identity(self.kvm.focus_identity)

    def show_identity(self, identity: Identity | None) -> None:
        snap = self.kvm.snapshot
        leases = self.query_one("#lease-table", VimTable)
        nets = self.query_one("#net-table", VimTable)
        if identity is None or snap is None:
            leases.set_marked(set())
            nets.set_marked(set())
            return
        nets.set_marked({n.name for n in snap.networks if identity.vm and identity.vm in n.vms})
        net = snap.network(self._current) if self._current else None
        marked = set()
        for lease in net.leases if net else ():
            if identity.matches(mac=lease.mac, ip=lease.ip):
                marked.add(f"{lease.mac}/{lease.ip}")
        leases.set_marked(marked)

    @on(VimTable.RowHighlighted, "#net-table")
    def _net_row(self, event: VimTable.RowHighlighted) -> None:
        name = str(event.row_key.value)
        if name != self._current:
            self._current = name
            self._show_current()

    @on(VimTable.RowHighlighted, "#lease-table")
    def _lease_row(self, event: VimTable.RowHighlighted) -> None:
        key = str(event.row_key.value)
        if not event.data_table.user_moved_to(key):  # type: ignore[attr-defined]
            return
        mac, _, ip = key.partition("/")
        self.kvm.focus_identity = resolve(self.kvm.snapshot, mac=mac, ip=ip)

    def select_network(self, name: str) -> None:
        table = self.query_one("#net-table", VimTable)
        if name in table.row_keys:
            table.move_cursor(row=table.get_row_index(name))
            self._current = name
            self._show_current()
