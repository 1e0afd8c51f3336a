"""Fixtures of the UI tests: the app over the hand-built sample (a fake source, see sample.py)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# the UI tests share helpers as ``tests.ui.*`` (also run as ``python -m tests.ui.sample_app``)
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kvmtui.core.model import HostSnapshot  # noqa: E402
from kvmtui.ui.app import KvmApp  # noqa: E402
from tests.ui.sample import FROZEN_NOW, FakeSource  # noqa: E402


def ticking(step: float = 1.0) -> Callable[[], float]:
    """A monotonic clock that advances by ``step`` per reading: constant, known rates."""
    counter = itertools.count()
    return lambda: next(counter) * step


def make_app(
    snapshot: HostSnapshot | None = None,
    *,
    source: FakeSource | None = None,
    keymap_path: Path | None = None,
    **kwargs: object,
) -> KvmApp:
    src = source if source is not None else FakeSource(snapshot)
    return KvmApp(
        src,
        clock=lambda: FROZEN_NOW,
        monotonic=ticking(),
        poll_s=kwargs.pop("poll_s", 0.02),  # type: ignore[arg-type]
        keymap_path=keymap_path or Path("/nonexistent/kvmtui-keys.toml"),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def app_factory() -> Callable[..., KvmApp]:
    return make_app


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests of this folder in a fresh event loop (no pytest-asyncio here)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    params = inspect.signature(pyfuncitem.obj).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in params}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True
