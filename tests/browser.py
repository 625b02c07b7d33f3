"""Headless Chromium for browser tests, with the network cut off.

Playwright (the PyPI package `playwright`) drives Debian's Chromium
(`/usr/bin/chromium`, package `chromium`, or `CONFAB_CHROMIUM`); Playwright's own
browser downloads are never used. Where either is missing the tests skip with the
reason, and fail under `CI=true`.

Two fences keep every byte on this machine, and record what tried to leave:

- The browser's proxy is a trap (`Trap`): a local listener that records the
  request line of anything sent to it and refuses it. Only loopback bypasses it,
  so any other host, over HTTP, TLS or WebSocket, from a page or from Chromium
  itself, ends there. Chromium's own services (updates, accounts) still knock at
  start-up whatever the flags say; `Trap.foreign()` is everything else.
- A page made with `intercept=True` routes every request through
  `context.route("**/*")`, which lets loopback through and aborts (and records)
  anything else. Playwright answers CORS preflights itself while requests are
  intercepted, so a test of the server's own CORS answers passes `intercept=False`
  and relies on the trap (and on `requests`, which sees every request the page
  makes).

The Chromium flags are the ones this closed network needs (see the machine notes):
without the background-networking ones Chromium keeps trying Google's hosts.
"""

from __future__ import annotations

import os
import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.conftest import unavailable

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Route, WebSocket

CHROMIUM = Path(os.environ.get("CONFAB_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Hosts Chromium itself calls (component updates, account checks, autofill).
CHROMIUM_SERVICES = (".google.com", ".googleapis.com", ".gstatic.com")
TIMEOUT_MS = 30_000  # generous: two cores shared with the server and the test


def is_local(url: str) -> bool:
    """A URL that stays on this machine: loopback, or no network at all."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOOPBACK


class Trap:
    """The browser's proxy: records each request line it gets and refuses it."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        trap = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(8192).decode("latin-1").strip()
                trap.attempts.append(line)
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"http://127.0.0.1:{self._server.server_address[1]}"

    def foreign(self) -> list[str]:
        """What was sent to the trap, but for Chromium's own Google services (a page
        asking one of those hosts is caught by `OfflinePage` anyway)."""
        return [line for line in self.attempts if not _chromium_service(line)]

    @contextmanager
    def running(self) -> Iterator[Trap]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)


def _chromium_service(request_line: str) -> bool:
    """`CONNECT host:443 HTTP/1.1` or `GET http://host/... HTTP/1.1` to Google."""
    parts = request_line.split()
    target = parts[1] if len(parts) > 1 else ""
    host = (urlsplit(target).hostname if "://" in target else target.rpartition(":")[0]) or ""
    return host.endswith(CHROMIUM_SERVICES)


@asynccontextmanager
async def chromium(trap: Trap) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, everything but loopback sent to `trap`."""
    try:
        from playwright.async_api import Error, async_playwright
    except ImportError as exc:
        unavailable("Playwright", f"{exc} (pip install the test extras)")
    if not os.path.isfile(CHROMIUM):  # noqa: ASYNC240 (once, before the browser starts)
        unavailable("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=FLAGS,
                proxy={"server": trap.address, "bypass": ",".join(sorted(LOOPBACK))},
                timeout=TIMEOUT_MS,
            )
        except Error as exc:
            unavailable("Chromium", str(exc).splitlines()[0])
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class OfflinePage:
    """A page in a fresh context, and what it did: requests made, requests stopped
    for leaving the machine, WebSockets opened, errors it reported."""

    page: Page
    screenshots: Path
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def external(self) -> list[str]:
        """Everything that tried to leave the machine (should be empty)."""
        return self.blocked + [url for url in self.requests + self.sockets if not is_local(url)]

    async def _route(self, route: Route) -> None:
        url = route.request.url
        if is_local(url):
            await route.continue_()
        else:
            self.blocked.append(url)
            await route.abort("blockedbyclient")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _socket(self, socket: WebSocket) -> None:
        self.sockets.append(socket.url)


@asynccontextmanager
async def offline_page(
    browser: Browser, screenshots: Path, *, intercept: bool = True
) -> AsyncIterator[OfflinePage]:
    context = await browser.new_context(
        viewport={"width": 1400, "height": 900}, service_workers="block"
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        guard = OfflinePage(page, screenshots)
        if intercept:
            await context.route("**/*", guard._route)
        page.on("request", lambda request: guard.requests.append(request.url))
        page.on("websocket", guard._socket)
        page.on("console", guard._console)
        page.on("pageerror", lambda error: guard.errors.append(f"page error: {error}"))
        yield guard
    finally:
        await context.close()
