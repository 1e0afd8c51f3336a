"""pcapng export: one Interface Description Block per hop, each packet under the hop it was seen on.

Hand-written rather than scapy's ``PcapNgWriter``: scapy's writer (2.8) takes the interface from
each packet's ``sniffed_on`` and needs scapy packets, i.e. importing scapy (which reads every
interface of the host: seconds on a host with many taps) and re-building each frame as a scapy
object; the format needs only three block types, about sixty lines here, and lets us add what
scapy does not: nanosecond timestamps (``if_tsresol`` 9), the packet direction
(``epb_flags``) and a comment naming the correlated row ("row 12: out, tap vnet0").
Wireshark/tshark read it back (a test checks with tshark).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import sys
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144


def _opt(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def shb(application: str = "kvmtui") -> bytes:
    opts = _opt(4, application.encode()) + _opt(0, b"")
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts)


def idb(name: str, description: str = "") -> bytes:
    opts = _opt(2, name.encode())
    if description:
        opts += _opt(3, description.encode())
    opts += _opt(9, bytes([9])) + _opt(0, b"")  # if_tsresol: 10^-9 s
    return _block(1, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, SNAPLEN) + opts)


def epb(
    iface: int, ts_ns: int, data: bytes, wire_len: int, outgoing: bool | None, comment: str = ""
) -> bytes:
    pad = (-len(data)) % 4
    body = struct.pack(
        "<IIIII", iface, (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF, len(data),
        max(wire_len, len(data)),
    ) + data + b"\0" * pad  # fmt: skip
    opts = b""
    if comment:
        opts += _opt(1, comment.encode())
    if outgoing is not None:
        opts += _opt(2, struct.pack("<I", 2 if outgoing else 1))  # epb_flags: direction
    if opts:
        body += opts + _opt(0, b"")
    return _block(6, body)


_EPB_HEAD = struct.Struct("<IIIIIII")  # block type and length, then the EPB's fixed fields
_U32 = struct.Struct("<I")
_PADS = (b"", b"\0\0\0", b"\0\0", b"\0")
_DIRECTION = {  # epb_flags (direction) and the end of options, as epb() writes them
    out: _opt(2, struct.pack("<I", 2 if out else 1)) + _opt(0, b"") for out in (True, False)
}


def epb_plain(iface: int, ts_ns: int, data: bytes, wire_len: int, outgoing: bool) -> bytes:
    """``epb(iface, ts_ns, data, wire_len, outgoing)`` without a comment, in one pack: the
    flood's frames go through here (about 3x less work a frame)."""
    n = len(data)
    pad = _PADS[n & 3]
    opts = _DIRECTION[outgoing]
    total = 32 + n + len(pad) + len(opts)
    head = _EPB_HEAD.pack(6, total, iface, ts_ns >> 32 & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF, n,
                          wire_len if wire_len > n else n)  # fmt: skip
    return head + data + pad + opts + _U32.pack(total)


class ExportRefused(OSError):
    """The export path is refused (exists, a symlink, not a regular file): one line."""


def export_dir() -> str:
    """The default folder for captures: ``$XDG_DATA_HOME/kvmtui/captures`` (or
    ``~/.local/share/kvmtui/captures``), created mode 0700; never a world-writable /tmp."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    path = os.path.join(base, "kvmtui", "captures")
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise ExportRefused(f"{path} is not a folder of ours: refusing to write captures there")
    os.chmod(path, 0o700)
    return path


def check_export_path(path: str, overwrite: bool = False) -> None:
    """Refuse, before anything is captured, a path that would be refused at the end."""
    if path == "-":
        return
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ExportRefused(f"cannot write {path}: no folder {parent}") from None
        if not os.access(parent, os.W_OK):
            raise ExportRefused(f"cannot write {path}: {parent} is not writable") from None
        probe = os.statvfs(parent)
        if probe.f_flag & os.ST_RDONLY:
            raise ExportRefused(f"cannot write {path}: {parent} is read-only") from None
        return
    if stat.S_ISLNK(st.st_mode):
        raise ExportRefused(f"{path} is a symbolic link: refusing to follow it")
    if not overwrite:
        raise ExportRefused(f"{path} exists: pick another name, or pass --overwrite")
    if not stat.S_ISREG(st.st_mode):
        raise ExportRefused(f"{path} is not a regular file: refusing to overwrite it")


def open_export(path: str, overwrite: bool = False) -> BinaryIO:
    """Open ``path`` for a capture export: never through a symlink, mode 0600, an existing file
    only with ``overwrite`` (and then only a regular one); ``-`` is standard output."""
    if path == "-":
        return sys.stdout.buffer
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_TRUNC if overwrite else os.O_EXCL
    if overwrite:
        check_export_path(path, overwrite=True)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        if os.path.islink(path):
            raise ExportRefused(f"{path} is a symbolic link: refusing to follow it") from None
        raise ExportRefused(f"{path} exists: pick another name, or pass --overwrite") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ExportRefused(f"{path} is a symbolic link: refusing to follow it") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ExportRefused(f"{path} is not a regular file: refusing to write it")
    return os.fdopen(fd, "wb")
