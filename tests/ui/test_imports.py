"""First paint must not wait for heavy imports: the UI module loads no scapy/pyroute2/libvirt;
``kvmtui.ui.launch.run`` refuses a bad theme with one line (no traceback); no module under
``kvmtui/ui`` or ``kvmtui/core`` is part of an import circle, not even through an import inside
a function."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import kvmtui
from kvmtui.ui.launch import run


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


def test_run_rejects_unknown_theme(capsys) -> None:  # type: ignore[no-untyped-def]
    rc = run(argparse.Namespace(connect=None, theme="neon"))
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("kvmtui: unknown theme 'neon'") and "presenter" in err
    assert "Traceback" not in err


def _imports(package: str) -> dict[str, set[str]]:
    """Each module under kvmtui/PACKAGE and the modules of that package it imports, wherever the
    import statement is (module level, a function, a TYPE_CHECKING block)."""
    root = Path(kvmtui.__file__).parent
    mods = {
        ".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (root / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in mods else node.module)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


@pytest.mark.parametrize(
    ("package", "known"), [("ui", "kvmtui.ui.app"), ("core", "kvmtui.core.hosts")]
)
def test_no_import_circle(package: str, known: str) -> None:
    graph = _imports(package)
    assert graph.get(known)  # the walk found the package and its imports
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            mod = todo.pop()
            assert mod != start, f"{start} is imported back (modules on the way: {sorted(seen)})"
            if mod not in seen:
                seen.add(mod)
                todo.extend(graph[mod])
