"""`python server.py [serve]`: uvicorn on a listener bound before anything else,
with Confab's connection limits and a shutdown that ends event streams first."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import socket
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from asgi import create_app
from edge import ClientLimits, effective_connection_cap, http_protocol
from edge.listen import ListenError, bind_listener
from runtime.database_url import redacted
from runtime.preflight import StartupRefused, preflight
from runtime.telemetry import tracing
from settings import Settings

logger = logging.getLogger("confab")

# The collector's thresholds once serving. CPython's default young generation (700
# allocations) collects hundreds of times a second under live delivery, and its
# cascades into the older generations walk every subscriber's objects: with 1,000
# subscribers of one session receiving an event every 50 ms from another replica,
# the p99 publish-to-receive was 87-133 ms, 38 ms with collection off, 36 ms with
# these (bench.suite --only fanout, same machine). 50,000 did as well for delivery
# but each young collection then took long enough to show in the chat
# acknowledgement's p99 (13 ms against 8). The oldest generation keeps its default,
# so cyclic garbage of closed connections is still collected as before.
GC_THRESHOLDS = (10_000, 20, 10)


def serve(settings: Settings) -> int:
    try:
        listener = bind_listener(settings.host, settings.port)
    except ListenError as exc:
        logger.error("%s", exc)
        return 2
    try:
        # The database, before anything serves: migrated if start-up should, else
        # checked; a problem is one line (runtime/preflight.py).
        asyncio.run(preflight(settings))
    except StartupRefused as exc:
        listener.close()
        logger.error("%s", exc)
        return 2
    settings = settings.with_overrides(auto_migrate=False)  # done, by the preflight
    tracing.setup_from_env()
    limits = ClientLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=effective_connection_cap(settings.max_connections),
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Logging is configured once, in main (runtime/telemetry/logs.py); the
        # access log is Confab's own (edge/observe.py), with the request id.
        log_config=None,
        access_log=False,
        lifespan="on",
        # SIGTERM: stop accepting, let requests in flight finish, then run shutdown.
        timeout_graceful_shutdown=10,
        # Header and body deadlines, head size limit, connection cap (edge.protocol).
        http=http_protocol(limits),
        # An idle kept-alive connection has as long as a new one has for its headers.
        timeout_keep_alive=math.ceil(settings.header_timeout),
        # A larger WebSocket message closes the socket with 1009.
        ws_max_size=settings.ws_max_message_bytes,
    )
    ConfabServer(config, settings).run(sockets=[listener])
    return 0


class ConfabServer(uvicorn.Server):
    """Uvicorn, telling the app a shutdown has begun before it waits for open
    connections: event streams end at once instead of holding the shutdown."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the socket accepts: now it is true
            where = sockets[0].getsockname() if sockets else (self.config.host, self.config.port)
            host, port = where[0], where[1]
            logger.info(
                "Confab listening on http://%s:%d (database: %s, event bus: %s)",
                host,
                port,
                redacted(self.settings.database_url),
                redacted(self.settings.event_bus_url),
            )
        # Everything built so far (schema, types, modules) lives as long as the
        # process: out of the collector's sight, full collections stop walking it
        # and stop pausing requests for milliseconds.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        app = self.config.app
        if isinstance(app, Starlette) and hasattr(app.state, "loop"):
            app.state.loop.call_soon_threadsafe(app.state.shutting_down.set)
