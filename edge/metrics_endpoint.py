"""Serving the metrics: `GET /metrics` on the main port, or a port of its own.

`CONFAB_METRICS` (settings.py): `on` (the default) serves `/metrics` beside the
API; `port:NNNN` serves it only on that port (same host), for a scraper on a
private network; `off` serves nothing (`/metrics` is then a 404 like any unknown
path). The separate port is a tiny HTTP/1.0 server in the app's own event loop:
it answers `GET /metrics` and 404 to anything else, then closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.telemetry.metrics import Metrics

logger = logging.getLogger(__name__)

READ_TIMEOUT = 5.0


def metrics_route(metrics: Metrics) -> Route:
    async def scrape(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"])


@asynccontextmanager
async def metrics_server(metrics: Metrics, host: str, port: int) -> AsyncIterator[None]:
    """Serve `/metrics` on `host:port` while the block runs."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].split()
            if len(line) >= 2 and line[0] == b"GET" and line[1].split(b"?")[0] == b"/metrics":
                body = generate_latest(metrics.registry)
                status, kind = b"200 OK", CONTENT_TYPE_LATEST.encode()
            else:
                body, status, kind = b"Not Found\n", b"404 Not Found", b"text/plain"
            writer.write(
                b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, kind, len(body), body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    logger.info("metrics: serving /metrics on http://%s:%d", host, port)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()
