"""Compile a tcpdump-style filter expression to classic BPF with libpcap, and attach it.

libpcap (Debian ``libpcap0.8``) is loaded through ctypes: ``pcap_open_dead`` gives a handle for
Ethernet without opening any device, ``pcap_compile`` turns the expression into instructions,
which go to the kernel with ``SO_ATTACH_FILTER``. The kernel then drops what the filter rejects
before it is ever copied to us: this is what makes a Python capture loop keep up.

A wrong expression raises :class:`BpfError` with libpcap's own message
(``syntax error``, ``unknown host 'foo'``), so the UI and ``kvmtui trace --filter`` can show it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
import threading
from collections.abc import Sequence

SO_ATTACH_FILTER = 26
SO_LOCK_FILTER = 44
DLT_EN10MB = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
SNAPLEN = 262144

Insn = tuple[int, int, int, int]  # code, jt, jf, k


class BpfError(ValueError):
    """A filter expression libpcap refused, or libpcap is missing."""


class _BpfInsn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


_lock = threading.Lock()  # old libpcaps' compilers were not thread-safe
_lib: ctypes.CDLL | None = None


def _libpcap() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    for name in ("libpcap.so.0.8", "libpcap.so.1", ctypes.util.find_library("pcap")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.restype = ctypes.c_int
        lib.pcap_compile.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(_BpfProgram),
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_uint32,
        ]
        lib.pcap_geterr.restype = ctypes.c_char_p
        lib.pcap_geterr.argtypes = [ctypes.c_void_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
        _lib = lib
        return lib
    raise BpfError("libpcap not found (install Debian's libpcap0.8) to compile BPF filters")


def compile_filter(expr: str, snaplen: int = SNAPLEN) -> tuple[Insn, ...]:
    """Compile ``expr`` for Ethernet frames. Raises BpfError with libpcap's message."""
    lib = _libpcap()
    with _lock:
        handle = lib.pcap_open_dead(DLT_EN10MB, snaplen)
        if not handle:
            raise BpfError("pcap_open_dead failed")
        try:
            prog = _BpfProgram()
            rc = lib.pcap_compile(
                handle, ctypes.byref(prog), expr.encode(), 1, PCAP_NETMASK_UNKNOWN
            )
            if rc != 0:
                msg = (lib.pcap_geterr(handle) or b"").decode(errors="replace")
                raise BpfError(f"bad filter {expr!r}: {msg or 'pcap_compile failed'}")
            try:
                return tuple(
                    (prog.bf_insns[i].code, prog.bf_insns[i].jt, prog.bf_insns[i].jf,
                     prog.bf_insns[i].k)
                    for i in range(prog.bf_len)
                )  # fmt: skip
            finally:
                lib.pcap_freecode(ctypes.byref(prog))
        finally:
            lib.pcap_close(handle)


def check_filter(expr: str) -> str | None:
    """None when ``expr`` compiles, else the one-line reason (for a UI input's validation)."""
    try:
        compile_filter(expr)
    except BpfError as exc:
        return str(exc)
    return None


def combine(*exprs: str | None) -> str:
    """AND the non-empty expressions, each in parentheses ("" when none: match everything)."""
    parts = [e.strip() for e in exprs if e and e.strip()]
    if len(parts) == 1:
        return parts[0]
    return " and ".join(f"({p})" for p in parts)


def attach(sock: socket.socket, insns: Sequence[Insn]) -> None:
    """Attach classic BPF instructions to a socket (SO_ATTACH_FILTER)."""
    n = len(insns)
    arr = (_BpfInsn * max(n, 1))()
    for i, (code, jt, jf, k) in enumerate(insns):
        arr[i].code, arr[i].jt, arr[i].jf, arr[i].k = code, jt, jf, k
    fprog = struct.pack("HL", n, ctypes.addressof(arr))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def reject_all(sock: socket.socket) -> None:
    """Attach a filter that drops everything (to drain a socket before the real filter)."""
    attach(sock, [(0x06, 0, 0, 0)])  # BPF_RET | BPF_K, 0
