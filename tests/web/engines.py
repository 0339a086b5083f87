"""Two small browser drivers for the page tests, over the browsers' own automation protocols.

Playwright only drives its own builds of Firefox and WebKit; Debian's stock browsers speak the
standard protocols, so the tests speak them directly (aiohttp, nothing to download):

- ``FirefoxBiDi``: Debian's ``firefox-esr`` over WebDriver BiDi (``--remote-debugging-port``);
- ``WebKitDriver``: Debian's WebKitGTK through ``WebKitWebDriver`` (package webkit2gtk-driver),
  classic W3C WebDriver over HTTP, on an Xvfb display.

Both offer what the engine tests need: open a URL, evaluate an expression, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.web.support import free_port

FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
XVFB = "/usr/bin/Xvfb"
OPENSSL = "/usr/bin/openssl"
# Firefox prefs: no first-run pages, no updates or telemetry, muted video may start by itself
FIREFOX_PREFS = {
    "browser.shell.checkDefaultBrowser": False, "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True, "media.autoplay.default": 0, "browser.aboutwelcome.enabled": False,
    "network.captive-portal-service.enabled": False, "network.connectivity-service.enabled": False,
}


def _value(remote: dict[str, Any]) -> Any:
    """A BiDi remote value as Python."""
    kind, value = remote.get("type"), remote.get("value")
    if kind in ("undefined", "null"):
        return None
    if kind == "array":
        return [_value(v) for v in value or []]
    if kind == "object":
        return {k if isinstance(k, str) else _value(k): _value(v) for k, v in value or []}
    if kind == "number" and isinstance(value, str):  # NaN, Infinity, -0
        return float(value) if value != "-0" else 0.0
    return value


async def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


class FirefoxBiDi:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._profile = Path(tempfile.mkdtemp(prefix="vigie-ff-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self.context = ""

    async def start(self) -> FirefoxBiDi:
        (self._profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in FIREFOX_PREFS.items()))
        port = free_port()
        self._proc = subprocess.Popen(  # noqa: S603 - fixed binary, our arguments
            [FIREFOX, "--headless", "--no-remote", "--profile", str(self._profile),
             "--remote-debugging-port", str(port), "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1"})
        await _wait_port(port, 30)
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}/session", max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.send("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
        tree = await self.send("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]
        return self

    async def _read(self) -> None:
        assert self._ws is not None  # noqa: S101 - started
        async for msg in self._ws:
            data = json.loads(msg.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)

    async def send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._ws is not None  # noqa: S101 - started
        command = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[command] = future
        await self._ws.send_str(json.dumps({"id": command, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 60)
        if reply.get("type") == "error":
            raise RuntimeError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        result: dict[str, Any] = reply["result"]
        return result

    async def preload(self, script: str) -> None:
        await self.send("script.addPreloadScript", {"functionDeclaration": f"() => {{ {script} }}"})

    async def goto(self, url: str) -> None:
        await self.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, expression: str) -> Any:
        reply = await self.send("script.evaluate", {"expression": expression, "awaitPromise": True,
                                                    "target": {"context": self.context}})
        if reply.get("type") == "exception":
            raise RuntimeError(f"script failed: {reply.get('exceptionDetails', {}).get('text')}")
        return _value(reply["result"])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send("browser.close", {}), 5)
        if self._reader is not None:
            self._reader.cancel()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)


class WebKitDriver:
    """WebKitGTK's MiniBrowser through WebKitWebDriver, on its own Xvfb display."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self._http: aiohttp.ClientSession | None = None
        self._base = ""

    async def start(self) -> WebKitDriver:
        # Xvfb picks a free display itself and writes its number on the pipe
        read_fd, write_fd = os.pipe()
        self._procs.append(subprocess.Popen(  # noqa: S603 - fixed binary, our arguments
            [XVFB, "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_fd,)))
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            display = ":" + (await asyncio.to_thread(pipe.readline)).strip()
        port = free_port()
        env = {**os.environ, "DISPLAY": display}
        self._procs.append(subprocess.Popen(  # noqa: S603 - fixed binary, our arguments
            [WEBKIT_DRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        await _wait_port(port, 30)
        self._http = aiohttp.ClientSession(f"http://127.0.0.1:{port}")
        caps = {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True,
                                                 "webkitgtk:browserOptions": {"args": ["--automation"]}}}}
        reply = await self._call("POST", "/session", caps)
        self._base = f"/session/{reply['sessionId']}"
        return self

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self._http is not None  # noqa: S101 - started
        async with self._http.request(method, path, json=body if body is not None else {},
                                      timeout=aiohttp.ClientTimeout(total=60)) as r:
            data = await r.json()
        value = data.get("value")
        if r.status != 200:
            raise RuntimeError(f"{method} {path}: {r.status} {value}")
        return value

    async def goto(self, url: str) -> None:
        await self._call("POST", f"{self._base}/url", {"url": url})

    async def evaluate(self, expression: str) -> Any:
        return await self._call("POST", f"{self._base}/execute/sync",
                                {"script": f"return ({expression});", "args": []})

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._call("DELETE", self._base)
        if self._http is not None:
            await self._http.close()
        for proc in reversed(self._procs):
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class PlaywrightPage:
    """Debian's Chromium through Playwright, with the same three calls as the others."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self._context: Any = None
        self._page: Any = None

    async def start(self, *scripts: str) -> PlaywrightPage:
        """A phone-sized page; ``scripts`` run before the page's own (to remove MSE, say)."""
        self._context = await self._browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                                        has_touch=True, ignore_https_errors=True)
        for script in scripts:
            await self._context.add_init_script(script)
        self._page = await self._context.new_page()
        return self

    async def goto(self, url: str) -> None:
        await self._page.goto(url)

    async def evaluate(self, expression: str) -> Any:
        return await self._page.evaluate(expression)

    async def close(self) -> None:
        await self._context.close()


def tls_context(folder: Path) -> ssl.SSLContext:
    """A throwaway self-signed certificate for 127.0.0.1 (the browsers are told to accept it)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(  # noqa: S603 - fixed binary, our arguments
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


Driver = FirefoxBiDi | WebKitDriver | PlaywrightPage

PLAYER = "document.getElementById('player')"
REFRESHES = "Number(document.getElementById('mosaic').getAttribute('data-refreshes') || 0)"
# what moves: the video's clock, or the live picture's blob URL (each picture a new one)
MOTION = ("(() => { const v = document.getElementById('player-video'), s = document.getElementById('player-still');"
          " return v.hidden ? s.src : v.currentTime; })()")


async def evaluate_or_none(driver: Driver, expression: str) -> Any:
    """The expression's value, or None while the page is navigating (its context is gone)."""
    try:
        return await driver.evaluate(expression)
    except Exception:  # each driver words it its own way; the next poll tells
        return None


async def wait_for(driver: Driver, expression: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await evaluate_or_none(driver, expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression}")
        await asyncio.sleep(0.05)


@dataclass
class PageRun:
    """What one engine showed: the path it played, and its figures (for the bench)."""

    fallback: str
    first_frame_ms: float
    mosaic_first_ms: float


async def sign_in(driver: Driver, link: str, person: str, password: str) -> float:
    """Open the link, sign in, wait for the mosaic's second picture; ms to the first."""
    await driver.goto(link)
    await wait_for(driver, "document.getElementById('person') !== null")
    await evaluate_or_none(driver, f"(() => {{ document.getElementById('person').value = {json.dumps(person)};"
                          f" document.getElementById('password').value = {json.dumps(password)};"
                          " document.querySelector('form').requestSubmit(); return true; })()")
    await wait_for(driver, f"location.pathname === '/live/view' && {REFRESHES} >= 2")
    return float(await driver.evaluate("Number(document.getElementById('mosaic').getAttribute('data-first-ms'))"))


async def watch_camera(driver: Driver, camera: str) -> PageRun:
    """Tap a camera in the mosaic, wait for its first frame and for the picture to move."""
    await driver.evaluate(f"document.querySelector(\"#mosaic-hits .hit[data-camera='{camera}']\").click()")
    await wait_for(driver, f"{PLAYER}.getAttribute('data-state') === 'playing'")
    first = await driver.evaluate(MOTION)
    await wait_for(driver, f"{MOTION} !== {json.dumps(first)}")
    return PageRun(str(await driver.evaluate(f"{PLAYER}.getAttribute('data-fallback')")),
                   float(await driver.evaluate(f"Number({PLAYER}.getAttribute('data-first-frame-ms'))")), 0.0)


async def wait_ended(driver: Driver) -> None:
    """The page says "Accès terminé" and holds no picture of the venue any more."""
    await wait_for(driver, "!document.getElementById('ended').hidden", 15)
    assert await driver.evaluate(  # noqa: S101 - a test helper
        "!document.getElementById('player-video').getAttribute('src') && !document.getElementById('mosaic-img')"
        " && document.getElementById('grid').children.length === 0")
