"""What every pane shares: typed access to the app's state, and watching it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.widget import Widget

from kvmtui.core.model import HostSnapshot
from kvmtui.ui.identity import Identity

if TYPE_CHECKING:
    from kvmtui.ui.app import KvmApp


class Pane(Widget):
    """A pane re-renders from the app's reactives: ``snapshot``, ``rates``, ``focus_identity``."""

    DEFAULT_CSS = """
    Pane { height: 1fr; }
    """

    @property
    def kvm(self) -> KvmApp:
        return cast("KvmApp", self.app)

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
