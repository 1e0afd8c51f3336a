"""First paint must not wait for heavy imports: the UI module loads no scapy/pyroute2/libvirt,
and ``run_app`` refuses a bad theme with one line (no traceback)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from kvmtui.ui.app import run_app


def test_ui_import_loads_no_heavy_reader() -> None:
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import kvmtui.ui.app\n"
        "dt = time.perf_counter() - t\n"
        "heavy = [m for m in ('scapy', 'pyroute2', 'libvirt', 'psutil', 'kvmtui.core.live')"
        " if m in sys.modules]\n"
        "print(repr(heavy), dt)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    heavy, dt = out.stdout.split(" ", 1)
    assert heavy == "[]", f"the UI imported {heavy} at module load"
    assert float(dt) < 1.0  # textual itself is ~0.2-0.3 s here


def test_run_app_rejects_unknown_theme(capsys) -> None:  # type: ignore[no-untyped-def]
    rc = run_app(argparse.Namespace(connect=None, theme="neon"))
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("kvmtui: unknown theme 'neon'") and "presenter" in err
    assert "Traceback" not in err
