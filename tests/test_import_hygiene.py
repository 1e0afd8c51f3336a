"""The headless core never loads Textual or Rich (STYLE.md: a headless core and a UI on top).

Each module of the core packages is imported in a fresh interpreter, so one module's imports
cannot hide another's. New modules are picked up automatically.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import kvmtui

CORE_PACKAGES = ("kvmtui.core", "kvmtui.capture", "kvmtui.lab", "kvmtui.commands", "kvmtui.doctor")
ROOT = Path(kvmtui.__file__).parent


def _core_modules() -> list[str]:
    names = ["kvmtui.cli"]
    for package in CORE_PACKAGES:
        names.append(package)
        folder = ROOT / package.split(".", 1)[1]
        names += [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(folder)])]
    return names


def test_core_modules_are_found() -> None:
    modules = _core_modules()
    assert "kvmtui.core.model" in modules
    assert "kvmtui.lab.spec" in modules


@pytest.mark.parametrize("module", _core_modules())
def test_core_module_imports_no_textual(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "", f"{module} pulls in {out.stdout.strip()}"


def test_ui_does_load_textual() -> None:
    """The check above can fail: the UI package, imported the same way, does load Textual."""
    ui_app = ROOT / "ui" / "app.py"
    if not ui_app.exists():
        pytest.fail("kvmtui/ui/app.py is missing")
    code = "import kvmtui.ui.app, sys; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
