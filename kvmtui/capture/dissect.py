"""Full dissection of one frame with scapy, for the detail view: lazily, never in the capture loop.

Two traps (LAB-NOTES): importing scapy reads every interface and route of the namespace (17 s
with 2,000 links), and dissecting costs 80-150 us a packet. So scapy is imported once, late, in
a background thread (:func:`preload`), only its layers we need (l2, inet, inet6, dhcp), and only
the selected packet is dissected. :func:`dissect` never raises: a frame scapy chokes on gives
the error and a hex dump instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_ether: Any = None
_error: str | None = None
_thread: threading.Thread | None = None


def _import() -> None:
    global _ether, _error
    with _lock:
        if _ether is not None or _error is not None:
            return
        try:
            from scapy.config import conf

            conf.verb = 0
            conf.ipv6_enabled = True
            import scapy.layers.dhcp
            import scapy.layers.inet
            import scapy.layers.inet6  # noqa: F401
            from scapy.layers.l2 import Ether

            _ether = Ether
        except Exception as exc:  # scapy missing or broken: the detail view says so
            _error = f"scapy unavailable: {type(exc).__name__}: {exc}"


def preload(done: Callable[[], None] | None = None) -> threading.Thread:
    """Import scapy in a daemon thread now (call when a capture starts), so the first detail
    view does not freeze the UI."""
    global _thread
    with _lock:
        if _thread is None:

            def run() -> None:
                _import()
                if done is not None:
                    done()

            _thread = threading.Thread(target=run, name="kvmtui-scapy-import", daemon=True)
            _thread.start()
        return _thread


def ready() -> bool:
    return _ether is not None or _error is not None


def hexdump(data: bytes, width: int = 16) -> list[str]:
    out = []
    for i in range(0, len(data), width):
        chunk = data[i : i + width]
        hx = " ".join(f"{b:02x}" for b in chunk)
        asc = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{i:04x}  {hx:<{width * 3}} {asc}")
    return out


def dissect(data: bytes) -> list[str]:
    """scapy's layered view of ``data`` as text lines (imports scapy if not yet: call it from a
    worker thread). Never raises."""
    _import()
    if _ether is None:
        return [_error or "scapy unavailable", *hexdump(data)]
    try:
        pkt = _ether(data)
        text: str = pkt.show(dump=True)
        return text.splitlines()
    except Exception as exc:
        return [f"scapy could not dissect this frame ({type(exc).__name__}: {exc})", *hexdump(data)]


def summary(data: bytes) -> str:
    """scapy's one-line summary. Never raises."""
    _import()
    if _ether is None:
        return _error or "scapy unavailable"
    try:
        return str(_ether(data).summary())
    except Exception as exc:
        return f"undecodable ({type(exc).__name__})"
