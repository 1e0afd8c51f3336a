"""The capture's packet list: one line per correlated packet, one lane per hop.

A lane lights up (``●``) where the packet was seen, with its offset in microseconds from the
first hop that saw it; ``✗`` marks a hop the packet should have crossed and never did; ``·`` a
hop it had no reason to cross. Rows are added by key (never rebuilt per batch), the cursor
stays where the user put it, and the table holds at most ``max_rows`` lines (the oldest go).
Colours come from component classes (theme variables), so the presenter theme works too.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from kvmtui.capture.correlate import PacketRow
from kvmtui.capture.decode import Frame

MAX_ROWS = 500  # lines on screen; the screen keeps more for export and re-filtering

PROTOS = ("all", "icmp", "udp", "tcp", "arp", "dhcp")
DIRECTIONS = ("both", "out", "in")
DIRECTION_LABEL = {"both": "both ways", "out": "from the VM", "in": "to the VM"}


@dataclass(frozen=True, slots=True)
class Lane:
    """One hop column: the hop's index in the path, its device and role."""

    index: int
    dev: str
    role: str


def offset_text(us: float) -> str:
    """+0, +35µs, +1.2ms, +2.5s."""
    if us < 0.5:
        return "+0"
    if us < 1000:
        return f"+{us:.0f}µs"
    if us < 1_000_000:
        return f"+{us / 1000:.1f}ms"
    return f"+{us / 1e6:.1f}s"


def endpoint(ip: str | None, port: int | None, proto: str) -> str:
    if ip is None:
        return "?"
    if port is None or proto in ("icmp", "icmpv6"):
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def src_dst(f: Frame) -> str:
    if f.net == "arp":
        return f"{f.src_ip} → {f.dst_ip}"
    if f.src_ip is None:
        return f"{f.src_mac} → {f.dst_mac}"
    return f"{endpoint(f.src_ip, f.sport, f.proto)} → {endpoint(f.dst_ip, f.dport, f.proto)}"


NARROW_WORDS = (
    ("echo-request", "echo-req"),
    ("echo-reply", "echo-rep"),
    ("Discover", "Disc"),
    ("Request", "Req"),
)
NOTE_WRAP = 38  # narrow layout: a NAT / stopped line under src → dst wraps at this width


def narrow_proto(f: Frame) -> str:
    """``proto_info`` in fewer columns (80x24): 'ICMP echo-req seq 1', 'DHCP Offer' (the
    offered IP is the flow's destination; the DHCP view and the detail pane have it)."""
    if f.dhcp is not None:
        text = f"DHCP {f.dhcp.msg_type.capitalize()}".replace("Request", "Req")
        return f"{f.vlan_label} {text}" if f.vlans else text
    text = proto_info(f)
    for long, short in NARROW_WORDS:
        text = text.replace(long, short)
    return text


def proto_info(f: Frame) -> str:
    """Short protocol column: 'ICMP echo-request id 7 seq 1', 'DHCP Offer 192.168.122.5';
    a tagged frame's VLAN first: 'vlan 20 ICMP echo-request seq 1'."""
    text = _proto_info(f)
    return f"{f.vlan_label} {text}" if f.vlans else text


def _proto_info(f: Frame) -> str:
    if f.dhcp is not None:
        d = f.dhcp
        ip = d.yiaddr if d.yiaddr != "0.0.0.0" else (d.requested_ip or "")
        return f"DHCP {d.msg_type.capitalize()} {ip}".rstrip()
    if f.net == "arp":
        return "ARP who-has" if f.arp_op == 1 else "ARP is-at" if f.arp_op == 2 else "ARP"
    if f.proto in ("icmp", "icmpv6"):
        s = f.summary(tags=False)  # "ICMP echo-request a > b id 7 seq 1"
        head = s.split(" ")[:2]
        extra = f" seq {f.icmp_seq}" if f.icmp_seq is not None else ""
        return " ".join(head) + extra
    if f.proto == "tcp" and f.tcp_flags is not None:
        flags = "".join(c for i, c in enumerate("FSRPAUEC") if f.tcp_flags & (1 << i))
        return f"TCP [{flags}] len {f.payload_len}"
    if f.proto == "udp":
        return f"UDP len {f.payload_len}"
    return f.proto.upper()


def nat_text(row: PacketRow, short: bool = False) -> str | None:
    """'192.168.122.72:7 → 198.51.100.2:7 ✓ct' (the VM side first; ✓ct: conntrack agrees);
    ``short``: '⇒ 198.51.100.2:7 ✓ct' (the outside end only, for narrow terminals)."""
    n = row.nat
    if n is None:
        return None
    ct = {True: " ✓ct", False: " ✗ct", None: ""}[n.conntrack]
    return f"⇒ {n.to}{ct}" if short else f"{n.from_} → {n.to}{ct}"


def stopped_text(row: PacketRow) -> str | None:
    """Short flag for a packet that stopped at a hop (the lanes show where it was seen; the
    detail pane has the full sentence): '✗ never on wan0', '✗ ends at virbr1: no way out...';
    when the kernel said why it freed the packet (``row.fate``), its words:
    '✗ dropped at virbr1 by the firewall (nftables rule)'."""
    fate = getattr(row, "fate", None)
    if fate is not None:
        words = getattr(fate, "words", "") or f"dropped at {fate.hop}: {fate.reason}"
        return f"✗ {words}"
    if row.missing:
        return "✗ never on " + ", ".join(row.missing)
    if row.dead_end:
        last = row.hops[-1].dev if row.hops else "?"
        return f"✗ ends at {last}: {row.dead_end}"
    return None


def matches(row: PacketRow, proto: str, direction: str) -> bool:
    if direction != "both" and row.direction != direction:
        return False
    f = row.frame
    if proto == "all":
        return True
    if proto == "dhcp":
        return f.dhcp is not None
    if proto == "icmp":
        return f.proto in ("icmp", "icmpv6")
    if proto == "arp":
        return f.net == "arp"
    return f.proto == proto


def clock_text(time_ns: int) -> str:
    t = time_ns / 1e9
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


class CapturePacketTable(DataTable[str | Text]):
    """The packet list. ``set_lanes`` once (or when the path changes), then ``add_packets``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="capture.table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="capture.table.up"),
        Binding("g", "scroll_top", "First row", show=False, id="capture.table.first"),
        Binding("G", "follow", "Last row (follow)", show=False, id="capture.table.follow"),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "capture-table--lit",
        "capture-table--missing",
        "capture-table--dim",
        "capture-table--nat",
        "capture-table--stopped",
    }
    DEFAULT_CSS = """
    CapturePacketTable { height: 1fr; }
    CapturePacketTable > .capture-table--lit { color: $success; text-style: bold; }
    CapturePacketTable > .capture-table--missing { color: $error; text-style: bold; }
    CapturePacketTable > .capture-table--dim { color: $text-muted; }
    CapturePacketTable > .capture-table--nat { color: $accent; }
    CapturePacketTable > .capture-table--stopped { color: $error; }
    """

    def __init__(self, max_rows: int = MAX_ROWS, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.max_rows = max_rows
        self.lanes: tuple[Lane, ...] = ()
        self.compact = False
        self.narrow = False
        self.follow = True  # the cursor rides the newest row until the user moves it
        self._keys: list[str] = []  # row keys in table order (oldest first)
        self._rows: dict[str, PacketRow] = {}

    # -- columns ------------------------------------------------------------------------------

    def set_lanes(
        self, lanes: Sequence[Lane], compact: bool | None = None, narrow: bool | None = None
    ) -> bool:
        """(Re)build the columns, one per hop; ``compact`` (under 140 columns) puts the NAT /
        stopped column before src → dst, with the NAT's outside end only; ``narrow`` (80x24
        over SSH) keeps src → dst and proto whole: the lanes become one "hops" column of marks
        (the hop strip above names them in order) and the NAT / stopped words go on a line of
        their own under src → dst. Rows are dropped (the screen re-adds them): returns True
        when that happened."""
        lanes = tuple(lanes)
        compact = self.compact if compact is None else compact
        narrow = self.narrow if narrow is None else narrow
        same = (lanes, compact, narrow) == (self.lanes, self.compact, self.narrow)
        if same and self.columns:
            return False
        self.lanes, self.compact, self.narrow = lanes, compact, narrow
        self.clear(columns=True)
        self._keys.clear()
        self._rows.clear()
        self.add_column("#", key="seq")
        if narrow:
            self.add_column("hops", key="hops")
        else:
            for lane in lanes:
                self.add_column(lane.dev, key=f"hop{lane.index}")
        self.add_column("", key="dir")
        for key in self._order():
            label = {"flow": "src → dst", "note": "NAT / stopped", "proto": "proto"}[key]
            self.add_column(label, key=key)
        return True

    def _order(self) -> tuple[str, ...]:
        if self.narrow:
            return ("flow", "proto")
        return ("note", "flow", "proto") if self.compact else ("flow", "note", "proto")

    def rename_lane(self, index: int, dev: str) -> None:
        """The tap came back under another name: the lane keeps its place, takes the name."""
        from textual.widgets.data_table import ColumnKey

        lanes = []
        for lane in self.lanes:
            lanes.append(Lane(lane.index, dev, lane.role) if lane.index == index else lane)
        self.lanes = tuple(lanes)
        col = self.columns.get(ColumnKey(f"hop{index}"))
        if col is not None and str(col.label) != dev:
            col.label = Text(dev)
            self.refresh()

    # -- rows ---------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"capture-table--{name}", partial=True)

    def cells(self, key: str, row: PacketRow) -> list[str | Text]:
        lit, missing, dim = self._style("lit"), self._style("missing"), self._style("dim")
        seen = {s.hop: s for s in row.hops}
        t0 = row.time_ns
        out: list[str | Text] = [key]
        marks = Text()
        for lane in self.lanes:
            s = seen.get(lane.index)
            if s is not None:
                offset = "" if self.narrow else offset_text((s.time_ns - t0) / 1000.0)
                marks.append(Text("●" + offset, style=lit))
            elif lane.dev in row.missing:
                marks.append(Text("✗", style=missing))
            else:
                marks.append(Text("·", style=dim))
            if not self.narrow:
                out.append(marks)
                marks = Text()
        if self.narrow:
            out.append(marks)
        out.append("→" if row.direction == "out" else "←")
        if self.narrow:
            out.extend(self._narrow_cells(row))
            return out
        note = nat_text(row, short=self.compact)
        stop = stopped_text(row)
        cols: dict[str, str | Text] = {"flow": src_dst(row.frame), "proto": proto_info(row.frame)}
        if stop:
            cols["note"] = Text(stop + (f" · {note}" if note else ""), style=self._style("stopped"))
        elif note:
            cols["note"] = Text(note, style=self._style("nat"))
        else:
            cols["note"] = ""
        out.extend(cols[k] for k in self._order())
        return out

    def _narrow_cells(self, row: PacketRow) -> list[str | Text]:
        """src → dst with the NAT translation (whole) or where it stopped on the lines under
        it, wrapped to the flow's width; the proto column abbreviated."""
        flow = src_dst(row.frame)
        stop = stopped_text(row)
        nat = nat_text(row)
        cell = Text(flow)
        width = max(len(flow), NOTE_WRAP)
        for text, style in ((stop, "stopped"), (nat and "NAT " + nat, "nat")):
            if text:
                for line in textwrap.wrap(text, width, subsequent_indent="  "):
                    cell.append("\n" + line, style=self._style(style))
        return [cell, narrow_proto(row.frame)]

    def add_packets(self, rows: Iterable[tuple[str, PacketRow]]) -> int:
        """Append rows by key (oldest first); drop the oldest beyond ``max_rows``. Returns the
        number added."""
        added = 0
        cursor_key = self.current_key()
        with self.app.batch_update():
            for key, row in rows:
                if key in self._rows:
                    continue
                self.add_row(*self.cells(key, row), key=key, height=None if self.narrow else 1)
                self._keys.append(key)
                self._rows[key] = row
                added += 1
            extra = len(self._keys) - self.max_rows
            if extra > 0:
                for key in self._keys[:extra]:
                    self.remove_row(key)
                    del self._rows[key]
                del self._keys[:extra]
            if not self._keys:
                return added
            if self.follow:
                self.move_cursor(row=len(self._keys) - 1, animate=False)
            elif cursor_key is not None and cursor_key in self._rows:
                self.move_cursor(row=self.get_row_index(cursor_key), animate=False)
            elif cursor_key is not None:  # its row aged out: stay with the oldest one
                self.move_cursor(row=0, animate=False)
        return added

    def clear_packets(self) -> None:
        self.clear()
        self._keys.clear()
        self._rows.clear()
        self.follow = True

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    def packet(self, key: str) -> PacketRow | None:
        return self._rows.get(key)

    def current_key(self) -> str | None:
        if self.row_count == 0 or self.cursor_row < 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # the cursor beyond the rows while they are replaced
            return None
        return str(key.value) if key.value is not None else None

    def text_of(self, key: str) -> list[str]:
        return [str(c) for c in self.get_row(key)]

    # -- follow mode --------------------------------------------------------------------------

    def action_follow(self) -> None:
        self.follow = True
        if self._keys:
            self.move_cursor(row=len(self._keys) - 1, animate=False)

    def action_cursor_up(self) -> None:
        self.follow = False
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self.follow = self.cursor_row >= len(self._keys) - 1

    def action_scroll_top(self) -> None:
        self.follow = False
        super().action_scroll_top()

    def action_page_up(self) -> None:
        self.follow = False
        super().action_page_up()

    def on_click(self) -> None:
        self.follow = False
