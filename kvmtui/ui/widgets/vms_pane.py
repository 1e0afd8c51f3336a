"""The VMs pane: each VM's NICs (MAC, tap, network, IP and where the IP came from) and the
selected NIC's path out of the host."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Static

from kvmtui.core.model import HostSnapshot, NicPath, Vm, VmNic
from kvmtui.doctor.model import HostDiagnosis
from kvmtui.ui.identity import Identity, resolve
from kvmtui.ui.screens.doctor import verdict_words
from kvmtui.ui.widgets.base import Pane
from kvmtui.ui.widgets.path_view import PathView
from kvmtui.ui.widgets.vim_table import Cell, VimTable

COLUMNS = [
    ("vm", "VM"),
    ("state", "State"),
    ("mac", "MAC"),
    ("tap", "Tap"),
    ("net", "Network"),
    ("ip", "IP from"),
]

SOURCE_LABEL = {
    "lease": "DHCP",
    "static-dhcp": "fixed",
    "neighbour": "ARP",
    "agent": "agent",
    "host-address": "host",
    "none": "",
}


def nic_key(vm: Vm, nic: VmNic | None) -> str:
    return f"{vm.name}/{nic.mac}" if nic else vm.name


def nic_cells(vm: Vm, nic: VmNic | None) -> tuple[Cell, ...]:
    name = vm.name + ("*" if vm.kind == "light" else "")
    if nic is None:
        return (name, vm.state, "no NIC", "", "", "")
    ip = f"{nic.ip} {SOURCE_LABEL.get(nic.ip_source, nic.ip_source)}" if nic.ip else "—"
    return (name, vm.state, nic.mac, nic.tap or "—", nic.network or nic.bridge or nic.type, ip)


class VmsPane(Pane):
    DEFAULT_CSS = """
    VmsPane { layout: vertical; }
    VmsPane #vm-table { height: auto; max-height: 50%; }
    VmsPane #vm-path-title { height: auto; padding: 0 1; background: $panel; }
    VmsPane #vm-verdict { height: auto; max-height: 2; padding: 0 1; }
    VmsPane PathView { height: auto; }
    VmsPane #vm-legend { height: 1; padding: 0 1; color: $text-muted; dock: bottom; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._nic_rows: dict[str, tuple[Vm, VmNic | None]] = {}
        self.current: tuple[str, str | None] | None = None  # (vm, mac)

    def compose(self) -> ComposeResult:
        yield VimTable(COLUMNS, id="vm-table")
        yield Static("", id="vm-path-title")
        yield Static("", id="vm-verdict")
        yield PathView(id="vm-path")
        yield Static("* light VM (namespace)  c: capture  d: doctor  D: all VMs", id="vm-legend")

    @property
    def table(self) -> VimTable:
        return self.query_one("#vm-table", VimTable)

    def main_widget(self) -> Widget | None:
        return self.table

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "diagnosis", lambda _d: self._show_verdict(), init=False)
        self.watch(self.app, "doctor_trouble", lambda _t: self._show_verdict(), init=False)

    def _show_verdict(self) -> None:
        """The doctor's top finding for the NIC shown (the likeliest root cause)."""
        line = self.query_one("#vm-verdict", Static)
        diag: HostDiagnosis | None = self.kvm.diagnosis
        if self.current is None or self.current[1] is None:
            line.update("")
            return
        vm, mac = self.current[0], self.current[1]
        if not getattr(self.app, "doctor_on", False):
            line.update("[$text-muted]doctor: diagnoses a live host only[/]")
        elif diag is None and self.kvm.doctor_trouble:
            line.update(f"[$warning]doctor: cannot run: {escape(self.kvm.doctor_trouble)}[/]")
        elif diag is None:
            line.update(verdict_words(None))
        else:
            line.update(verdict_words(diag.nic(vm, mac)))

    def show_snapshot(self, snap: HostSnapshot | None) -> None:
        if snap is None:
            self.table.sync_rows([])
            self.query_one("#vm-path-title", Static).update("Waiting for the host model…")
            return
        rows = []
        self._nic_rows = {}
        for vm in snap.vms:
            for nic in vm.nics or (None,):
                key = nic_key(vm, nic)
                self._nic_rows[key] = (vm, nic)
                rows.append((key, nic_cells(vm, nic)))
        self.table.sync_rows(rows)
        if self.current is None and rows:
            vm, nic = self._nic_rows[rows[0][0]]
            self.current = (vm.name, nic.mac if nic else None)
        self._show_path()

    def current_path(self) -> NicPath | None:
        snap = self.kvm.snapshot
        if snap is None or self.current is None:
            return None
        vm, mac = self.current
        return next((p for p in snap.paths_of(vm) if mac is None or p.mac == mac), None)

    def _show_path(self) -> None:
        snap = self.kvm.snapshot
        title = self.query_one("#vm-path-title", Static)
        view = self.query_one(PathView)
        if snap is None:
            return
        if not snap.vms:
            why = (
                "libvirt is unreachable (see the line above) and no light VM was found."
                if any(p.source == "libvirt" for p in snap.problems)
                else "No VMs on this host."
            )
            title.update(why)
            view.draw(None)
            return
        if self.current is None:
            return
        name, mac = self.current
        vm = snap.vm(name)
        if vm is None:
            title.update(f"[$error]VM {escape(name)} is gone from the host.[/]")
            view.draw(None)
            return
        kind = "light VM, a network namespace" if vm.kind == "light" else "libvirt domain"
        title.update(f"Path of [b]{escape(name)}[/b] {escape(mac or '')} ({kind})")
        self._show_verdict()
        view.draw(self.current_path(), empty="No path known for this NIC.")

    def show_identity(self, identity: Identity | None) -> None:
        marked: set[str] = set()
        if identity is not None:
            for key, (vm, nic) in self._nic_rows.items():
                if identity.matches(
                    vm=vm.name,
                    mac=nic.mac if nic else None,
                    ip=nic.ip if nic else None,
                    tap=nic.tap if nic else None,
                ):
                    marked.add(key)
        self.table.set_marked(marked)
        # follow the identity picked elsewhere, so the path shown is the marked VM's
        if identity is not None and identity.vm and not self.table.has_focus:
            cur = self.current
            if cur is None or cur[0] != identity.vm or (cur[1] and cur[1] not in identity.macs):
                mac = next((m for m in sorted(identity.macs) if f"{identity.vm}/{m}" in
                            self._nic_rows), None)  # fmt: skip
                self.select_vm(identity.vm, mac)

    @on(VimTable.RowHighlighted, "#vm-table")
    def _row(self, event: VimTable.RowHighlighted) -> None:
        key = str(event.row_key.value)
        got = self._nic_rows.get(key)
        if got is None:
            return
        vm, nic = got
        self.current = (vm.name, nic.mac if nic else None)
        self._show_path()
        if not self.table.user_moved_to(key):
            return
        self.kvm.focus_identity = resolve(
            self.kvm.snapshot, vm=vm.name, mac=nic.mac if nic else None
        )
        self._show_path()

    def select_vm(self, name: str, mac: str | None = None) -> bool:
        for key, (vm, nic) in self._nic_rows.items():
            if vm.name == name and (mac is None or (nic is not None and nic.mac == mac)):
                self.table.move_cursor(row=self.table.get_row_index(key))
                return True
        return False
