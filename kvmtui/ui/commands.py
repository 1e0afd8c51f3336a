"""Command palette providers: "Go to VM / bridge / network / MAC" (posted as a ``GoTo``
message the app handles) and the explorer's own screens (doctor, switch, lessons)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from kvmtui.core.model import HostSnapshot
from kvmtui.ui.messages import GoTo


class GoToProvider(Provider):
    def _targets(self) -> list[tuple[str, str, Callable[[], None]]]:
        snap: HostSnapshot | None = getattr(self.app, "snapshot", None)
        if snap is None:
            return []
        app = self.app

        def go(kind: str, name: str) -> None:
            app.post_message(GoTo(kind, name))

        out: list[tuple[str, str, Callable[[], None]]] = []
        for vm in snap.vms:
            out.append(
                (
                    f"Go to VM {vm.name}",
                    f"{vm.state}, {len(vm.nics)} NIC(s)",
                    partial(go, "vm", vm.name),
                )
            )
        for b in snap.bridges:
            out.append(
                (
                    f"Go to bridge {b.name}",
                    f"{len(b.ports)} ports, {len(b.fdb)} MACs",
                    partial(go, "bridge", b.name),
                )
            )
        for n in snap.networks:
            out.append(
                (
                    f"Go to network {n.name}",
                    f"{n.mode}, bridge {n.bridge or '—'}",
                    partial(go, "network", n.name),
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
                        partial(go, "mac", e.mac),
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


class ScreensProvider(Provider):
    """The explorer's screens by name: "Doctor: all VMs", "Switch view of br0", "Lessons"."""

    def _targets(self) -> list[tuple[str, str, str]]:
        snap: HostSnapshot | None = getattr(self.app, "snapshot", None)
        out = [
            ("Doctor: every VM's verdict", "the host-wide doctor view (D)", "host_doctor"),
            ("Doctor: the selected NIC", "its findings ranked, evidence and fix (d)", "doctor"),
            ("Lessons", "the seed's experiments, run on the lab (L)", "lessons"),
        ]
        for b in snap.bridges if snap is not None else ():
            out.append(
                (
                    f"Switch view of {b.name}",
                    "frames in -> out, FDB events (s)",
                    f"switch('{b.name}')",
                )
            )
        return out

    async def discover(self) -> Hits:
        for title, help_text, action in self._targets():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, action in self._targets():
            score = matcher.match(title)
            if score > 0:
                cb = partial(self.app.run_action, action)
                yield Hit(score, matcher.highlight(title), cb, help=help_text)
