"""``D``: the doctor's verdict of every NIC of every VM on the host, one row each with its top
finding; Enter opens that NIC's Doctor screen. Host-wide findings and notes below the table."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Static

from kvmtui.doctor.model import HostDiagnosis
from kvmtui.ui.screens.doctor import MARK, DoctorScreen
from kvmtui.ui.widgets.vim_table import Cell, VimTable

COLUMNS = [("vm", "VM"), ("nic", "NIC"), ("verdict", "Verdict"), ("top", "Top finding")]
PLAIN_VERDICT = {"ok": "✓ ok", "problem": "✗ problem", "unknown": "? unknown"}


def host_rows(diag: HostDiagnosis) -> list[tuple[str, tuple[Cell, ...]]]:
    rows: list[tuple[str, tuple[Cell, ...]]] = []
    for vm in diag.vms:
        for nic in vm.nics:
            top = nic.top
            where = nic.tap or nic.network or nic.mac
            words = "—" if top is None else (f"{top.hop}: " if top.hop else "") + top.summary
            rows.append(
                (
                    f"{vm.name}/{nic.mac}",
                    (vm.name, where, PLAIN_VERDICT.get(nic.verdict, nic.verdict), words),
                )
            )
    return rows


class HostDoctorScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="hostdoctor.back"),
        Binding("d", "open", "Findings (Enter)", id="hostdoctor.open"),
    ]
    DEFAULT_CSS = """
    HostDoctorScreen #hostdoctor-title { height: 1; padding: 0 1; background: $panel;
                                         text-style: bold; }
    HostDoctorScreen VimTable { height: 1fr; border: round $panel; }
    HostDoctorScreen VimTable:focus { border: heavy $accent; }
    HostDoctorScreen #hostdoctor-host { height: auto; max-height: 8; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("Doctor · every VM", id="hostdoctor-title")
        yield VimTable(COLUMNS, id="hostdoctor-table")
        yield Static("", id="hostdoctor-host")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "diagnosis", self._show, init=True)
        self.query_one(VimTable).focus()

    def _show(self, diag: HostDiagnosis | None) -> None:
        table = self.query_one(VimTable)
        title = self.query_one("#hostdoctor-title", Static)
        host = self.query_one("#hostdoctor-host", Static)
        if diag is None:
            title.update("Doctor · every VM · reading the host's facts…")
            table.sync_rows([])
            host.update("")
            return
        rows = host_rows(diag)
        bad = sum(1 for vm in diag.vms for n in vm.nics if n.verdict == "problem")
        title.update(escape(f"Doctor · {diag.host} · {len(rows)} NIC(s), {bad} with a problem"))
        table.sync_rows(rows)
        lines = [
            f"{MARK.get(f.severity, f.severity)} {escape(f.summary)}"
            + (f"  [$accent]fix:[/] {escape(f.fix)}" if f.fix else "")
            for f in diag.host_findings
        ]
        lines += [f"[$text-muted]note: {escape(n)}[/]" for n in diag.notes]
        host.update("\n".join(lines))

    def action_open(self) -> None:
        key = self.query_one(VimTable).current_key()
        if key is None or "/" not in key:
            return
        vm, mac = key.rsplit("/", 1)
        self.app.push_screen(DoctorScreen(vm, mac))

    @on(VimTable.RowSelected)
    def _selected(self, event: VimTable.RowSelected) -> None:
        self.action_open()
