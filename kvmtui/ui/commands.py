"""Command palette provider: "Go to VM / bridge / network / MAC"."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from kvmtui.ui.app import KvmApp


class GoToProvider(Provider):
    def _targets(self) -> list[tuple[str, str, Callable[[], None]]]:
        app = cast("KvmApp", self.app)
        snap = app.snapshot
        if snap is None:
            return []
        out: list[tuple[str, str, Callable[[], None]]] = []
        for vm in snap.vms:
            out.append(
                (
                    f"Go to VM {vm.name}",
                    f"{vm.state}, {len(vm.nics)} NIC(s)",
                    partial(app.go_to, "vm", vm.name),
                )
            )
        for b in snap.bridges:
            out.append(
                (
                    f"Go to bridge {b.name}",
                    f"{len(b.ports)} ports, {len(b.fdb)} MACs",
                    partial(app.go_to, "bridge", b.name),
                )
            )
        for n in snap.networks:
            out.append(
                (
                    f"Go to network {n.name}",
                    f"{n.mode}, bridge {n.bridge or '—'}",
                    partial(app.go_to, "network", n.name),
                )
            )
        seen: set[str] = set()
        for b in snap.bridges:
            for e in b.fdb:
                if e.mac in seen:
                    continue
                seen.add(e.mac)
                out.append(
                    (
                        f"Go to MAC {e.mac}",
                        f"{e.owner.label()} on {b.name}/{e.port}",
                        partial(app.go_to, "mac", e.mac),
                    )
                )
        return out

    async def discover(self) -> Hits:
        for title, help_text, cb in self._targets():
            if not title.startswith("Go to MAC"):
                yield DiscoveryHit(title, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, cb in self._targets():
            score = max(matcher.match(title), matcher.match(f"{title} {help_text}") * 0.9)
            if score > 0:
                yield Hit(score, matcher.highlight(title), cb, help=help_text)
