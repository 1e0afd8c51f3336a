"""Remappable keys: a TOML file maps binding ids to keys, applied with ``App.set_keymap``.

The file is ``$KVMTUI_CONFIG`` if set, else ``~/.config/kvmtui/keys.toml``::

    [keys]
    "table.down" = "j,down"      # comma-separated keys for one binding id
    "app.capture" = "ctrl+k"

Binding ids are listed in the help screen (F1) and the README.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path


def config_path() -> Path:
    env = os.environ.get("KVMTUI_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kvmtui" / "keys.toml"


def load_keymap(path: Path | None = None) -> tuple[dict[str, str], str | None]:
    """Return (keymap, problem). A missing file is no problem; a broken one is one line."""
    path = path or config_path()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}, None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return {}, f"key config {path} ignored: {exc}"
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        return {}, f"key config {path} ignored: [keys] must be a table"
    keymap: dict[str, str] = {}
    bad: list[str] = []
    for binding_id, value in keys.items():
        if isinstance(value, str) and value.strip():
            keymap[str(binding_id)] = value.replace(" ", "")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            keymap[str(binding_id)] = ",".join(v.strip() for v in value)
        else:
            bad.append(str(binding_id))
    problem = f"key config {path}: ignored entries {', '.join(bad)}" if bad else None
    return keymap, problem
