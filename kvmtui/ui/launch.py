"""How ``kvmtui`` starts the explorer from its arguments: the source through
``kvmtui.core.hosts.open_source`` (this host, ``--replay``, ``--host``), the doctor on a live
host, the lab's lessons when ``KVMTUI_LAB_PREFIX`` is set, ``--vm``/``--capture``/``--lang``;
with several ``--host``, the host picker first (each host opened the way one ``--host`` is)."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable

from kvmtui.core.model import HostSnapshot
from kvmtui.core.source import SnapshotSource
from kvmtui.doctor.model import HostDiagnosis
from kvmtui.ui.app import KvmApp
from kvmtui.ui.screens.lessons import lab_prefix
from kvmtui.ui.themes import theme_name


def host_factory(args: argparse.Namespace) -> Callable[[str], SnapshotSource]:
    """A source for one of the ``--host`` targets: ``args`` as if it named only that one."""

    def open_one(target: str) -> SnapshotSource:
        from kvmtui.core.hosts import open_source  # heavy imports happen here, in a worker

        return open_source(argparse.Namespace(**{**vars(args), "remote": [target]}))

    return open_one


def run(args: argparse.Namespace) -> int:
    """``kvmtui [-c URI] [--replay FILE | --host HOST] [--theme NAME] [--vm VM [--capture]]
    [--lang vi]``: open the explorer on the host ``kvmtui.core.hosts.open_source`` names."""
    theme = getattr(args, "theme", None)
    try:
        theme_name(theme)
    except ValueError as exc:
        print(f"kvmtui: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "capture", False) and not getattr(args, "vm", None):
        print("kvmtui: --capture needs --vm VM", file=sys.stderr)
        return 2

    def factory() -> SnapshotSource:
        from kvmtui.core.hosts import open_source  # heavy imports happen here, in a worker

        return open_source(args)

    live = not (getattr(args, "replay", None) or getattr(args, "remote", None))
    uri = getattr(args, "connect", None)

    def doctor(snap: HostSnapshot) -> HostDiagnosis:
        from kvmtui.doctor.engine import diagnose, read_facts

        result: HostDiagnosis = diagnose(snap, read_facts(snap, uri=uri))
        return result

    hosts = list(getattr(args, "remote", None) or [])
    several = len(hosts) > 1 and not getattr(args, "replay", None)
    app = KvmApp(
        source_factory=None if several else factory,
        hosts=hosts if several else (),
        host_factory=host_factory(args) if several else None,
        start_theme=theme,
        doctor=doctor if live else None,
        lang=getattr(args, "lang", None) or "en",
        lab=lab_prefix(),
        start_vm=getattr(args, "vm", None),
        start_capture=bool(getattr(args, "capture", False)),
    )
    try:
        app.run()
    finally:
        src = app.source
        if src is not None:
            threading.Thread(target=src.close, daemon=True).start()
    if app.exit_message:
        print(app.exit_message, file=sys.stderr)
    return app.return_code or 0
