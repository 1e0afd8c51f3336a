"""``kvmtui serve`` in a real headless browser (Debian's chromium, driven over the Chrome DevTools
protocol with aiohttp's websocket client, which textual-serve already needs: no new package).

The served explorer reads this host (the real LiveHost: root, netlink, libvirt if it runs): the
test needs no lab, only a host tree with this machine's hostname at its root. What the browser
receives is the explorer's terminal output (CDP Network.webSocketFrameReceived), so "the host
tree appears" and "a key press switches tabs" are read from what the page was sent after the
page itself loaded and opened its websocket."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1200,800",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cdp:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.n = 0
        self.frames: list[str] = []  # what the page's websocket received, decoded
        self.loaded = False

    async def call(self, method: str, **params: Any) -> None:
        self.n += 1
        await self.ws.send_str(json.dumps({"id": self.n, "method": method, "params": params}))

    async def pump_until(self, cond: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                return False
            if msg.type != aiohttp.WSMsgType.TEXT:
                return False
            data = json.loads(msg.data)
            method = data.get("method")
            if method == "Page.loadEventFired":
                self.loaded = True
            elif method == "Network.webSocketFrameReceived":
                resp = data["params"]["response"]
                payload = resp.get("payloadData", "")
                if resp.get("opcode") == 2:
                    payload = base64.b64decode(payload).decode("utf-8", "replace")
                self.frames.append(payload)
        return True

    def text(self, since: int = 0) -> str:
        return "".join(self.frames[since:])


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed")
def test_serve_in_a_headless_browser() -> None:
    asyncio.run(_run())


async def _run() -> None:
    port, cdp_port = free_port(), free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    serve = subprocess.Popen(
        [sys.executable, "-m", "kvmtui", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    profile = tempfile.mkdtemp(prefix="kvu1-chromium-")
    browser = None
    try:
        assert serve.stdout is not None
        first = serve.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first and "this machine only" in first, first
        browser = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
             f"--remote-debugging-port={cdp_port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            page_ws = None
            deadline = time.monotonic() + 60
            while page_ws is None:
                assert time.monotonic() < deadline, "chromium's devtools never answered"
                try:
                    async with http.get(f"http://127.0.0.1:{cdp_port}/json/list") as r:
                        pages = [t for t in await r.json() if t.get("type") == "page"]
                        page_ws = pages[0]["webSocketDebuggerUrl"] if pages else None
                except aiohttp.ClientError:
                    pass
                if page_ws is None:
                    await asyncio.sleep(0.2)
            async with http.ws_connect(page_ws, max_msg_size=0) as ws:
                cdp = Cdp(ws)
                await cdp.call("Network.enable")
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
                assert await cdp.pump_until(lambda: cdp.loaded, 60), "the page never loaded"
                host = socket.gethostname()
                # the explorer's first paint: its tabs, then the host tree rooted at this host
                ok = await cdp.pump_until(
                    lambda: "Networks 3" in cdp.text() and host in cdp.text(), 90
                )
                assert ok, f"no host tree in the page: {cdp.text()[-400:]!r}"
                await cdp.call("Input.dispatchMouseEvent", type="mousePressed", x=300, y=300,
                               button="left", clickCount=1)  # fmt: skip
                await cdp.call("Input.dispatchMouseEvent", type="mouseReleased", x=300, y=300,
                               button="left", clickCount=1)  # fmt: skip
                since = len(cdp.frames)
                await cdp.call("Input.dispatchKeyEvent", type="keyDown", key="3", text="3",
                               code="Digit3", windowsVirtualKeyCode=51)  # fmt: skip
                await cdp.call("Input.dispatchKeyEvent", type="keyUp", key="3", code="Digit3",
                               windowsVirtualKeyCode=51)  # fmt: skip
                # the Networks tab's table header is only drawn once that tab is shown
                ok = await cdp.pump_until(
                    lambda: "Leases" in cdp.text(since) and "Range" in cdp.text(since), 30
                )
                assert ok, f"the key did not switch tabs: {cdp.text(since)[-400:]!r}"
    finally:
        for proc in (browser, serve):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
