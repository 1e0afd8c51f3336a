"""The QEMU guests' initramfs: busybox-static, the virtio modules and an /init that makes traffic.

Written as a gzip'd newc cpio by Python itself (no cpio, no mknod: device nodes are cpio
entries). Modules come from ``/lib/modules/KVER`` of the kernel the guests boot and are
decompressed (.ko.xz, .ko.zst, .ko.gz) since busybox's insmod loads plain .ko files only.

The guest's /init reads ``kvmtui.name``, ``kvmtui.target`` and ``kvmtui.extra`` from the kernel
command line, gets a lease with udhcpc (sending its name as option 12), pings its gateway and
target, then keeps pinging every few seconds. It writes evidence lines to the serial console:

    kvmtui-lease ip=192.168.122.57 router=192.168.122.1
    kvmtui-ping 198.51.100.1 ok
"""

from __future__ import annotations

import glob
import gzip
import io
import lzma
import os
import shutil
import stat
import subprocess

from kvmtui.lab.procs import LabError

MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "failover",
    "net_failover",
    "virtio_net",
)

BUSYBOX = "/bin/busybox"

INIT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin /run
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in MODULES; do
    [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
name=guest; target=; extra=
for kv in $(cat /proc/cmdline); do
    case "$kv" in
        kvmtui.name=*) name=${kv#kvmtui.name=} ;;
        kvmtui.target=*) target=${kv#kvmtui.target=} ;;
        kvmtui.extra=*) extra=${kv#kvmtui.extra=} ;;
    esac
done
hostname "$name"
ip link set lo up
i=0
while ! ip link show eth0 >/dev/null 2>&1 && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
ip link set eth0 up
echo "kvmtui-boot name=$name"
udhcpc -b -i eth0 -s /udhcpc.sh -x hostname:"$name" -T 2 -t 0 -A 2 >/dev/null 2>&1
while [ ! -f /tmp/lease ]; do sleep 0.5; done
read ip router < /tmp/lease
echo "kvmtui-lease ip=$ip router=$router"
n=0
while :; do
    for t in $router $target $extra; do
        if ping -c 1 -W 2 "$t" >/dev/null 2>&1; then r=ok; else r=fail; fi
        if [ $n -lt 3 ] || [ $((n % 20)) -eq 0 ]; then echo "kvmtui-ping $t $r"; fi
    done
    n=$((n+1))
    sleep 4
done
"""

UDHCPC = r"""#!/bin/busybox sh
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        gw=${router%% *}
        [ -n "$gw" ] && ip route replace default via "$gw" dev "$interface"
        echo "$ip $gw" > /tmp/lease.new && mv /tmp/lease.new /tmp/lease
        ;;
esac
exit 0
"""


class _Cpio:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        namez = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}"
            for v in (
                self.ino,
                mode,
                0,
                0,
                1,
                0,
                len(data),
                0,
                0,
                rdev[0],
                rdev[1],
                len(namez),
                0,
            )
        )
        self.ino += 1
        self.buf.write(hdr.encode() + namez)
        self.buf.write(b"\0" * (-(110 + len(namez)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def _read_module(path: str) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(raw)
    if path.endswith(".gz"):
        return gzip.decompress(raw)
    if path.endswith(".zst"):
        return _unzstd(path, raw)
    return raw


def _unzstd(path: str, raw: bytes) -> bytes:
    """Python 3.11 has no zstd: the zstandard package if present, else the zstd tool."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        zstandard = None
    if zstandard is not None:
        data: bytes = zstandard.ZstdDecompressor().decompress(raw, max_output_size=64 << 20)
        return data
    if shutil.which("zstd"):
        cp = subprocess.run(["zstd", "-dc", path], capture_output=True, check=False)
        if cp.returncode == 0:
            return cp.stdout
    raise LabError(f"{path} is zstd-compressed: apt-get install zstd")


def find_module(kver: str, name: str) -> str | None:
    for suffix in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        hits = glob.glob(f"/lib/modules/{kver}/kernel/**/{name}{suffix}", recursive=True)
        if hits:
            return hits[0]
    return None


def kernel() -> tuple[str, str] | None:
    """(path of the newest /boot/vmlinuz-*, its version) or None."""
    found = sorted(glob.glob("/boot/vmlinuz-*"), key=os.path.getmtime)
    if not found:
        return None
    path = found[-1]
    return path, os.path.basename(path)[len("vmlinuz-") :]


def build(kver: str, out: str) -> None:
    """Write the initramfs for kernel ``kver`` to ``out`` (atomic)."""
    if not os.path.exists(BUSYBOX):
        raise LabError("busybox is missing: apt-get install busybox-static")
    cpio = _Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules", "etc"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3)
    with open(BUSYBOX, "rb") as f:
        cpio.file("bin/busybox", f.read(), 0o755)
    cpio.file("init", INIT.replace("MODULES", " ".join(MODULES)).encode(), 0o755)
    cpio.file("udhcpc.sh", UDHCPC.encode(), 0o755)
    for name in MODULES:
        path = find_module(kver, name)
        if path is not None:  # absent: built into this kernel
            cpio.file(f"lib/modules/{name}.ko", _read_module(path))
    data = gzip.compress(cpio.finish(), compresslevel=6)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out)
