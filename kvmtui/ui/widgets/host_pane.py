"""The Host pane: a tree of uplinks, bridges, their ports and networks, and a detail panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from kvmtui.core.model import Bridge, HostSnapshot, Link, Port
from kvmtui.ui import fmt
from kvmtui.ui.identity import Identity, resolve
from kvmtui.ui.widgets.base import Pane


@dataclass(frozen=True, slots=True)
class NodeInfo:
    key: str  # stable across snapshots: "bridge:br0", "port:br0:vnet1", "net:default", ...
    kind: str  # host, uplink, bridge, port, network, note
    name: str
    bridge: str | None = None


class HostTree(Tree[NodeInfo]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="tree.down"),
        Binding("k", "cursor_up", "Up", show=False, id="tree.up"),
        Binding("g", "scroll_home", "First", show=False, id="tree.first"),
        Binding("G", "scroll_end", "Last", show=False, id="tree.last"),
        Binding("m", "mac_table", "MAC table", id="host.macs"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "host-tree--identity",
        "host-tree--down",
        "host-tree--dim",
        "host-tree--bridge",
    }
    DEFAULT_CSS = """
    HostTree > .host-tree--identity { color: $accent; text-style: bold; }
    HostTree > .host-tree--down { color: $error; }
    HostTree > .host-tree--dim { color: $text-muted; }
    HostTree > .host-tree--bridge { color: $secondary; text-style: bold; }
    """

    def action_scroll_home(self) -> None:
        self.cursor_line = 0
        self.scroll_to_line(0, animate=False)

    def action_scroll_end(self) -> None:
        # setting cursor_line alone left the view where it was: the cursor off screen
        self.cursor_line = self.last_line
        self.scroll_to_line(self.last_line, animate=False)

    def action_mac_table(self) -> None:
        node = self.cursor_node
        if node is not None and node.data is not None and node.data.bridge:
            self.app.call_later(self.app.run_action, f"show_macs('{node.data.bridge}')")
        else:
            self.notify("Pick a bridge or one of its ports first", severity="warning")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._styles: dict[str, Style] = {}

    def style_of(self, name: str) -> Style:
        """A component style, looked up once per relabel pass (``forget_styles``): a thousand
        port labels ask for the same four styles."""
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(name, partial=True)
        return style

    def fit_width(self) -> None:
        """Tree measures its width only when its lines are rebuilt, not when a label changes:
        a label that got shorter (rates, the identity mark) left a horizontal scrollbar behind."""
        lines = self._tree_lines
        if not lines:
            return
        depth, root = self.guide_depth, self.show_root
        width = max(
            self.get_label_width(ln.node) + ln._get_guide_width(depth, root) for ln in lines
        )
        if width != self.virtual_size.width:
            self.virtual_size = Size(width, len(lines))

    def forget_styles(self) -> tuple[Style, ...]:
        """Drop the memo; returns the styles now in force (they change with the theme)."""
        self._styles = {}
        return tuple(self.style_of(c) for c in sorted(self.COMPONENT_CLASSES))


class HostPane(Pane):
    DEFAULT_CSS = """
    HostPane { layout: horizontal; }
    HostPane HostTree { width: 1fr; height: 1fr; }
    HostPane #host-detail { width: 40; height: 1fr; display: none; border-left: solid $panel; }
    HostPane #host-detail Static { padding: 0 1; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._structure: tuple[str, ...] = ()
        self._tree_nodes: dict[str, TreeNode[NodeInfo]] = {}
        self._identity: Identity | None = None
        self._last_key: str | None = None
        self._ports_of: HostSnapshot | None = None
        self._tree: HostTree | None = None
        self._inputs: dict[str, object] = {}
        self._styles_seen: tuple[Style, ...] = ()
        self._ports: dict[tuple[str, str], tuple[Bridge, Port]] = {}

    def compose(self) -> ComposeResult:
        tree = HostTree("reading the host…", id="host-tree")
        tree.show_root = True
        tree.guide_depth = 3
        yield tree
        with VerticalScroll(id="host-detail", can_focus=False):
            yield Static("", id="host-detail-text")

    @property
    def host_tree(self) -> HostTree:
        if self._tree is None:
            self._tree = self.query_one(HostTree)
        return self._tree

    def main_widget(self) -> Widget | None:
        return self.host_tree

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "rates", lambda _: self._relabel(), init=False)

    # --- building ------------------------------------------------------------------------

    def _entries(self, snap: HostSnapshot) -> list[tuple[str | None, NodeInfo]]:
        """(parent key, node) in display order."""
        out: list[tuple[str | None, NodeInfo]] = []
        enslaved = {p.name for b in snap.bridges for p in b.ports}
        uplinks = [
            lk
            for lk in snap.links
            if lk.name not in enslaved
            and (lk.name == snap.uplink or (lk.kind == "physical" and lk.master is None))
        ]
        for lk in uplinks:
            out.append((None, NodeInfo(f"uplink:{lk.name}", "uplink", lk.name)))
        for b in snap.bridges:
            bkey = f"bridge:{b.name}"
            out.append((None, NodeInfo(bkey, "bridge", b.name, b.name)))
            for n in b.networks:
                out.append((bkey, NodeInfo(f"net:{n}", "network", n, b.name)))
            for p in b.ports:
                out.append((bkey, NodeInfo(f"port:{b.name}:{p.name}", "port", p.name, b.name)))
            if not b.ports:
                out.append((bkey, NodeInfo(f"note:{b.name}", "note", "no ports", b.name)))
        # libvirt networks whose bridge is not on the host (inactive, or another netns)
        on_bridges = {n for b in snap.bridges for n in b.networks}
        for net in snap.networks:
            if net.name not in on_bridges:
                out.append((None, NodeInfo(f"net:{net.name}", "network", net.name, None)))
        return out

    def show_snapshot(self, snap: HostSnapshot | None) -> None:
        tree = self.host_tree
        if snap is None:
            tree.root.set_label("reading the host…")
            return
        root = self._root_label(snap)
        if root != tree.root.label:
            tree.root.set_label(root)
        entries = self._entries(snap)
        structure = tuple(info.key for _, info in entries)
        if structure != self._structure:
            self._rebuild(entries)
            self._structure = structure
        self._relabel()
        self._show_detail()

    def _rebuild(self, entries: list[tuple[str | None, NodeInfo]]) -> None:
        tree = self.host_tree
        cursor = tree.cursor_node
        keep = cursor.data.key if cursor is not None and cursor.data is not None else None
        keep_bridge = cursor.data.bridge if cursor is not None and cursor.data is not None else None
        tree.clear()
        self._tree_nodes = {}
        self._inputs = {}
        snap = self.kvm.snapshot
        if snap is not None:  # nodes get their labels now: relabelling 1,000 ports after is slow
            self._index_ports(snap)
            self._styles_seen = tree.forget_styles()
        rates = self.kvm.rates
        for parent, info in entries:
            at = tree.root if parent is None else self._tree_nodes[parent]
            label: str | Text = info.name
            if snap is not None:
                self._inputs[info.key] = self._label_inputs(snap, info, rates, self._identity)
                label = self._label(snap, info)
            node = at.add(label, data=info, expand=True, allow_expand=info.kind == "bridge")
            self._tree_nodes[info.key] = node
        tree.root.expand()
        target = self._tree_nodes.get(keep or "") or self._tree_nodes.get(f"bridge:{keep_bridge}")
        if target is None and self._tree_nodes:
            target = next(iter(self._tree_nodes.values()))
        if target is not None:
            # a node's line is known only once the tree has laid out its new lines
            tree.call_after_refresh(tree.move_cursor, target)

    def _root_label(self, snap: HostSnapshot) -> Text:
        t = Text(snap.hostname or "host", style="bold")
        bits = []
        if snap.uplink:
            bits.append(f"default route via {snap.uplink}")
        if snap.ip_forward is not None:
            bits.append(f"ip_forward {'on' if snap.ip_forward else 'off'}")
        if not snap.bridges and not snap.links:
            bits.append("nothing read yet" if snap.problems else "no interfaces")
        elif not snap.bridges:
            bits.append("no bridges on this host")
        if bits:
            t.append("  " + " · ".join(bits), style=self.host_tree.style_of("host-tree--dim"))
        return t

    def _relabel(self, only: set[str] | None = None) -> None:
        """Relabel every node, or the nodes whose keys are in ``only``."""
        snap = self.kvm.snapshot
        if snap is None:
            return
        self._index_ports(snap)
        styles = self.host_tree.forget_styles()
        if styles != self._styles_seen:
            self._styles_seen = styles
            self._inputs.clear()
        nodes = self._tree_nodes
        rates = self.kvm.rates
        ident = self._identity
        changed = False
        for key in nodes if only is None else only & nodes.keys():
            node = nodes[key]
            info = node.data
            if info is None:
                continue
            # a label is made again only when what it shows changed: with 1,000 idle ports a
            # rates tick or a new snapshot relabels nothing (set_label costs the Tree a redraw)
            inputs = self._label_inputs(snap, info, rates, ident)
            if inputs is not None and self._inputs.get(key) == inputs:
                continue
            self._inputs[key] = inputs
            label = self._label(snap, info)
            if inputs is None and label == node.label:
                continue  # a bridge, network or uplink whose label came out the same
            node.set_label(label)
            changed = True
        if changed:
            self.host_tree.fit_width()

    def _index_ports(self, snap: HostSnapshot) -> None:
        if self._ports_of is not snap:  # one lookup table per snapshot, not a scan per port
            self._ports_of = snap
            self._ports = {(b.name, p.name): (b, p) for b in snap.bridges for p in b.ports}

    def _label_inputs(
        self,
        snap: HostSnapshot,
        info: NodeInfo,
        rates: dict[str, tuple[float, float]],
        ident: Identity | None,
    ) -> object:
        """What a port's or a bridge's label is made of (None: always relabel)."""
        if info.kind == "port":
            b, p = self._ports.get((info.bridge or "", info.name), (None, None))
            if p is None or b is None:
                return None
            hit = ident is not None and ident.matches(vm=p.vm, tap=p.name)
            return (p, info.name in b.uplinks, rates.get(p.name), hit)
        return None

    def _label(self, snap: HostSnapshot, info: NodeInfo) -> Text:
        tree = self.host_tree
        dim = tree.style_of("host-tree--dim")
        ident = self._identity
        rates = self.kvm.rates
        t = Text()
        if info.kind == "bridge":
            b = snap.bridge(info.name)
            t.append(f"{info.name}", style=tree.style_of("host-tree--bridge"))
            if b is not None:
                t.append(f"  bridge {' '.join(a for a in b.addresses if ':' not in a)}", dim)
                t.append(f" · STP {'on' if b.stp else 'off'}", dim)
                self._state(t, b.state)
                self._rates(t, rates.get(b.name))
        elif info.kind == "port":
            b, p = self._ports.get((info.bridge or "", info.name), (None, None))
            t.append(info.name)
            if p is not None:
                t.append(f"  {self._describe_port(p, b)}", dim)
                self._port_state(t, p)
                self._rates(t, rates.get(p.name))
                if ident is not None and ident.matches(vm=p.vm, tap=p.name):
                    t.stylize(tree.style_of("host-tree--identity"))
                    t = Text("◆ ", style=tree.style_of("host-tree--identity")) + t
        elif info.kind == "network":
            net = snap.network(info.name)
            t.append(f"network {info.name}", style="italic")
            if net is not None:
                t.append(f"  {fmt.mode_label(net.mode)}", dim)
                if not net.active:
                    t.append(" · inactive", tree.style_of("host-tree--down"))
                if ident is not None and ident.vm in net.vms:
                    t.stylize(tree.style_of("host-tree--identity"))
        elif info.kind == "uplink":
            lk = snap.link(info.name)
            t.append(info.name)
            if lk is not None:
                role = "uplink" if lk.name == snap.uplink else "physical NIC"
                addrs = " ".join(a for a in lk.addresses if ":" not in a)
                t.append(f"  {role} {addrs}".rstrip(), dim)
                if lk.peer_netns:
                    t.append(f" · veth→{lk.peer_netns}", dim)
                self._state(t, lk.state)
                self._rates(t, rates.get(lk.name))
        else:
            t.append(info.name, dim)
        return t

    @staticmethod
    def _describe_port(p: Port, b: Bridge | None) -> str:
        uplink = b is not None and p.name in b.uplinks
        if p.kind == "tap":
            what = f"VM {p.vm} · tap" if p.vm else "tap"
        elif p.kind == "veth":
            what = f"VM {p.vm} · " if p.vm else ""
            what += f"veth→{p.peer_netns}" if p.peer_netns else "veth"
        elif p.kind == "physical":
            what = "physical NIC"
        else:
            what = p.kind
        return what + (" · uplink" if uplink else "")

    def _state(self, t: Text, state: str) -> None:
        if state in ("up", "unknown"):
            t.append(f" · {state}", self.host_tree.style_of("host-tree--dim"))
        else:
            t.append(f" · {state}", self.host_tree.style_of("host-tree--down"))

    STP_SHORT: ClassVar[dict[str, str]] = {
        "forwarding": "fwd",
        "blocking": "BLOCKING",
        "listening": "listening",
        "learning": "learning",
        "disabled": "stp-disabled",
        "unknown": "",
    }

    def _port_state(self, t: Text, p: Port) -> None:
        """Compact at 80 columns: 'fwd up' when all is well, loud when not."""
        stp = self.STP_SHORT.get(p.stp_state, p.stp_state)
        bad = p.state not in ("up", "unknown") or p.stp_state in ("blocking", "disabled")
        style = self.host_tree.style_of("host-tree--down" if bad else "host-tree--dim")
        t.append(f" · {stp} {p.state}".replace("  ", " "), style)

    def _rates(self, t: Text, r: tuple[float, float] | None) -> None:
        if r is None:
            return
        t.append(
            f"  ↓{fmt.rate(r[0])} ↑{fmt.rate(r[1])}", self.host_tree.style_of("host-tree--dim")
        )

    # --- identity and selection -----------------------------------------------------------

    def show_identity(self, identity: Identity | None) -> None:
        if identity == self._identity:
            return
        old, self._identity = self._identity, identity
        # only the nodes the old or the new identity marks change: a cursor key in a table
        # must not relabel a thousand ports
        snap = self.kvm.snapshot
        if snap is None:
            return
        touched: set[str] = set()
        for ident in (old, identity):
            if ident is None:
                continue
            for b in snap.bridges:
                touched.update(
                    f"port:{b.name}:{p.name}" for p in b.ports if ident.matches(vm=p.vm, tap=p.name)
                )
            touched.update(f"net:{n.name}" for n in snap.networks if ident.vm in n.vms)
        self._relabel(touched)

    @on(Tree.NodeHighlighted, "#host-tree")
    def _highlighted(self, event: Tree.NodeHighlighted[NodeInfo]) -> None:
        info = event.node.data
        if info is None:
            self._show_detail()
            return
        if info.bridge:
            self.kvm.selected_bridge = info.bridge
        snap = self.kvm.snapshot
        fresh = self.host_tree.has_focus and info.key != self._last_key
        self._last_key = info.key
        if fresh and info.kind == "port" and snap is not None:
            self.kvm.focus_identity = resolve(snap, tap=info.name)
        self._show_detail()

    def _show_detail(self) -> None:
        snap = self.kvm.snapshot
        node = self.host_tree.cursor_node
        text = self.query_one("#host-detail-text", Static)
        if snap is None or node is None or node.data is None:
            text.update("")
            return
        text.update(detail_markup(snap, node.data, self.kvm.rates))


def detail_markup(snap: HostSnapshot, info: NodeInfo, rates: dict[str, tuple[float, float]]) -> str:
    e = escape
    lines: list[str] = []
    if info.kind == "bridge":
        b = snap.bridge(info.name)
        if b is None:
            return f"[$error]bridge {e(info.name)} is gone[/]"
        lines += [
            f"[b]Bridge {e(b.name)}[/b]",
            f"MAC      {b.mac}",
            f"address  {e(', '.join(b.addresses) or 'none')}",
            f"state    {b.state}",
            f"STP      {'on' if b.stp else 'off'}"
            + (f", forward delay {b.forward_delay_s:g}s" if b.forward_delay_s is not None else ""),
            f"ports    {len(b.ports)}   FDB entries {len(b.fdb)}",
            f"uplinks  {e(', '.join(b.uplinks) or 'none (no way off the host by itself)')}",
            f"networks {e(', '.join(b.networks) or 'none')}",
        ]
    elif info.kind == "port":
        b = snap.bridge(info.bridge or "")
        p = next((p for p in b.ports if p.name == info.name), None) if b else None
        if p is None:
            return f"[$error]port {e(info.name)} is gone[/]"
        learned = [f for f in (b.fdb if b else ()) if f.port == p.name and f.kind == "learned"]
        lines += [
            f"[b]Port {e(p.name)}[/b] of {e(info.bridge or '')}",
            f"kind     {p.kind}" + (f" → netns {e(p.peer_netns)}" if p.peer_netns else ""),
            f"MAC      {p.mac}",
            f"owner    {e(p.owner or '—')}",
            f"state    {p.state}, STP {p.stp_state}",
            f"learning {_yn(p.learning)}  flooding {_yn(p.flooding)}",
            f"learned  {', '.join(f.mac for f in learned) or 'nothing yet'}",
        ]
        r = rates.get(p.name)
        if r:
            lines.append(f"rx {fmt.rate(r[0])}  tx {fmt.rate(r[1])}")
    elif info.kind == "network":
        net = snap.network(info.name)
        if net is None:
            return f"network {e(info.name)}"
        lines += [
            f"[b]Network {e(net.name)}[/b] ({fmt.mode_label(net.mode)})",
            f"bridge   {e(net.bridge or '—')}",
            "",
            e(fmt.explain(net.mode)),
        ]
    elif info.kind == "uplink":
        lk: Link | None = snap.link(info.name)
        if lk is None:
            return f"[$error]{e(info.name)} is gone[/]"
        lines += [
            f"[b]{e(lk.name)}[/b] ({lk.kind})",
            f"MAC      {lk.mac}",
            f"address  {e(', '.join(lk.addresses) or 'none')}",
            f"state    {lk.state}",
        ]
        if lk.name == snap.uplink:
            lines.append("carries the default route: NATed traffic leaves here")
    return "\n".join(lines)


def _yn(v: bool | None) -> str:
    return "?" if v is None else ("on" if v else "off")
