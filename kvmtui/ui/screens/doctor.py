"""``d``: the Doctor screen of one NIC: every finding ranked (root cause first), each with its
severity, hop, summary, the facts it rests on (and where each was read) and the fix an admin
would run. It watches the app's ``diagnosis``, so it changes when the host does."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Footer, Static

from kvmtui.doctor.model import Finding, HostDiagnosis, NicDiagnosis

MARK = {
    "error": "[$error]✗ error[/]",
    "warning": "[$warning]! warning[/]",
    "info": "[$accent]i info[/]",
}
VERDICT = {
    "ok": "[$success]✓ ok[/]",
    "problem": "[$error]✗ problem[/]",
    "unknown": "[$warning]? unknown[/]",
}


def verdict_words(nic: NicDiagnosis | None) -> str:
    """One line for the VMs tab: the verdict and the top finding (the likeliest root cause)."""
    if nic is None:
        return "[$text-muted]doctor: not diagnosed yet[/]"
    top = nic.top
    head = VERDICT.get(nic.verdict, nic.verdict)
    if top is None:
        return f"doctor: {head}, nothing found on this NIC's path"
    hop = f" at {escape(top.hop)}" if top.hop else ""
    return f"doctor: {head}{hop}: {escape(top.summary)}"


def finding_markup(i: int, f: Finding) -> str:
    hop = escape(f.hop) if f.hop else "host"
    lines = [f"[b]{i}.[/b] {MARK.get(f.severity, f.severity)}  [b]{hop}[/b]  {escape(f.code)}"]
    lines.append(f"   {escape(f.summary)}")
    for fact in f.evidence:
        lines.append(
            f"   [$text-muted]·[/] {escape(fact.text)} [$text-muted]({escape(fact.source)})[/]"
        )
    if f.fix:
        lines.append(f"   [$accent]fix:[/] {escape(f.fix)}")
    return "\n".join(lines)


def nic_markup(diag: HostDiagnosis | None, vm: str, mac: str) -> tuple[str, str]:
    """(title, body) of the Doctor screen for one NIC of ``vm``."""
    if diag is None:
        return f"Doctor · {vm} {mac}", "Reading the host's facts…"
    nic = diag.nic(vm, mac)
    if nic is None:
        return f"Doctor · {vm} {mac}", f"No diagnosis for {escape(vm)} {mac}: is the VM gone?"
    where = ", ".join(x for x in (nic.tap, nic.network) if x)
    title = f"Doctor · {vm} {mac}" + (f" ({where})" if where else "")
    parts = [
        f"Verdict: {VERDICT.get(nic.verdict, nic.verdict)}   "
        f"[$text-muted]{len(nic.findings)} finding(s), likeliest cause first[/]"
    ]
    if not nic.findings:
        parts.append("Nothing wrong found on this NIC's path.")
    parts += [finding_markup(i, f) for i, f in enumerate(nic.findings, 1)]
    if diag.host_findings:
        parts.append("[b]Host-wide[/b]")
        parts += [finding_markup(i, f) for i, f in enumerate(diag.host_findings, 1)]
    parts += [f"[$text-muted]note: {escape(n)}[/]" for n in diag.notes]
    return title, "\n\n".join(parts)


class DoctorScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back", id="doctor.back"),
        Binding("j,down", "scroll(1)", "Down", show=False, id="doctor.down"),
        Binding("k,up", "scroll(-1)", "Up", show=False, id="doctor.up"),
        Binding("D", "app.host_doctor", "All VMs", id="doctor.host"),
    ]
    DEFAULT_CSS = """
    DoctorScreen #doctor-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    DoctorScreen VerticalScroll { height: 1fr; padding: 0 1; }
    DoctorScreen VerticalScroll:focus { border-left: heavy $accent; }
    """

    def __init__(self, vm: str, mac: str) -> None:
        super().__init__()
        self.vm = vm
        self.mac = mac

    def compose(self) -> ComposeResult:
        yield Static("", id="doctor-title")
        with VerticalScroll(id="doctor-body"):
            yield Static("", id="doctor-findings")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "diagnosis", self._show, init=True)
        self.query_one(VerticalScroll).focus()

    def _show(self, diag: HostDiagnosis | None) -> None:
        title, body = nic_markup(diag, self.vm, self.mac)
        self.query_one("#doctor-title", Static).update(escape(title))
        self.query_one("#doctor-findings", Static).update(body)

    def action_scroll(self, step: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=step, animate=False)
