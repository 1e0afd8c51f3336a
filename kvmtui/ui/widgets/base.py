"""What every pane shares: typed access to the explorer's state, and watching it.

Panes see the app through :class:`Explorer`, a protocol of the state they read and set, not the
``KvmApp`` class: ``ui/app.py`` imports the panes, the panes never import the app (they ask it
for things with messages, e.g. :class:`kvmtui.ui.messages.GoTo`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from textual.widget import Widget

from kvmtui.core.model import HostSnapshot
from kvmtui.doctor.model import HostDiagnosis
from kvmtui.ui.identity import Identity


class Explorer(Protocol):
    """The explorer state panes read (and the few fields they set)."""

    snapshot: HostSnapshot | None
    rates: dict[str, tuple[float, float]]
    focus_identity: Identity | None
    selected_bridge: str | None
    diagnosis: HostDiagnosis | None
    doctor_trouble: str
    clock: Callable[[], float]


class Pane(Widget):
    """A pane re-renders from the app's reactives: ``snapshot``, ``rates``, ``focus_identity``."""

    DEFAULT_CSS = """
    Pane { height: 1fr; }
    """

    @property
    def kvm(self) -> Explorer:
        return cast(Explorer, self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "snapshot", self._snapshot_changed, init=True)
        self.watch(self.app, "focus_identity", self._identity_changed, init=False)

    def _snapshot_changed(self, snap: HostSnapshot | None) -> None:
        self.show_snapshot(snap)
        self.show_identity(self.kvm.focus_identity)

    def _identity_changed(self, identity: Identity | None) -> None:
        self.show_identity(identity)

    def show_snapshot(self, snap: HostSnapshot | None) -> None:
        raise NotImplementedError

    def show_identity(self, identity: Identity | None) -> None:
        pass

    def main_widget(self) -> Widget | None:
        """The widget that takes focus when the pane's tab is shown."""
        return None
