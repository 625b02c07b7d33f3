"""Slow and idle clients: uvicorn's httptools protocol with deadlines and a cap.

Uvicorn closes a kept-alive connection that stays idle (`timeout_keep_alive`),
but has no deadline for a request once its first byte came, none for a
connection that never sends anything, no limit on the size of a request head
(httptools concatenates a header value as it trickles in), and `limit_concurrency`
answers 503 only once a request's headers are complete (never for a WebSocket
upgrade). So a client trickling bytes holds a connection, and its file
descriptor, for as long as it likes. This subclass adds:

- a header deadline: from the moment a connection opens, and from the first byte
  of each later request, its headers must be complete within `header_timeout`;
- a body deadline: the body must be complete within `body_timeout` after the
  headers (time while the server itself has stopped reading does not count);
- a head size limit: `MAX_HEAD_BYTES` of request line and headers;
- a drain limit: when the app answered without reading the whole body (a 413),
  uvicorn keeps the connection and drops the rest of the body as it comes; past
  `DRAIN_BYTES` of that, the connection is closed instead;
- a connection cap: a connection opened beyond `max_connections` (HTTP and
  WebSocket connections together) is answered 503 and closed at once, before it
  can hold anything.

A timed-out request gets `408` if nothing has been answered on the connection
yet, otherwise the connection is just closed. The timers cost nothing on the
fast path: they are armed only when a read ends in the middle of a request head
or body, which a request sent in one piece never does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from edge.refusals import DRAIN_BYTES
from settings import Settings

logger = logging.getLogger(__name__)

# Request line and headers; nginx allows 32 KiB by default, Node 16 KiB.
MAX_HEAD_BYTES = 64 * 1024
# A burst of refused connections is logged once per this many seconds.
_REFUSAL_LOG_INTERVAL = 10.0


@dataclass(frozen=True)
class ClientLimits:
    header_timeout: float = Settings.header_timeout
    body_timeout: float = Settings.body_timeout
    max_connections: int = Settings.max_connections
    max_head_bytes: int = MAX_HEAD_BYTES
    drain_bytes: int = DRAIN_BYTES


class GuardedHttpProtocol(HttpToolsProtocol):
    limits: ClassVar[ClientLimits] = ClientLimits()

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None
        # A request's first byte has come, its headers are not complete yet.
        self._in_head = False
        self._head_bytes = 0
        # Its headers are complete, its body is not.
        self._in_body = False
        # Bytes of body dropped since the answer went out (None: not answered yet).
        self._drained: int | None = None
        # The connection became a WebSocket: its transport is no longer ours.
        self._upgraded = False

    # -- connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            _refusals.count(self.limits.max_connections)
            self._answer_and_close(503, b"Service Unavailable", b"retry-after: 1\r\n")
            return
        # Covers a connection that never sends a byte, which uvicorn keeps forever.
        self._header_timer = self.loop.call_later(
            self.limits.header_timeout, self._headers_too_slow
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # From here the WebSocket protocol owns the transport (and its own pings).
        self._upgraded = True
        self._cancel_timers()
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        # Only bytes that arrive while a head is already under way are counted:
        # a read that starts a head may also end the previous request's body.
        counted = self._in_head
        super().data_received(data)
        if self._upgraded or self.transport.is_closing():
            return
        if self._in_head:
            if counted:
                self._head_bytes += len(data)
                if self._head_bytes > self.limits.max_head_bytes:
                    self._answer_and_close(431, b"Request Header Fields Too Large")
                    return
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(
                    self.limits.header_timeout, self._headers_too_slow
                )
        elif self._in_body:
            if self._drained is not None:
                self._drained += len(data)
                if self._drained > self.limits.drain_bytes:
                    self.transport.close()
                    return
            if self._body_timer is None:
                self._body_timer = self.loop.call_later(
                    self.limits.body_timeout, self._body_too_slow
                )

    # -- parser callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()
        # An upgrade has no body here: the WebSocket protocol takes over.
        self._in_body = not (self.parser.should_upgrade() and self._should_upgrade())

    def on_message_complete(self) -> None:
        self._in_body = False
        self._drained = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_body:
            # Answered before the body was all read: what still comes is dropped.
            self._drained = 0

    # -- deadlines -------------------------------------------------------------

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._upgraded or self.transport.is_closing():
            return
        if self.flow.read_paused:
            # Reading was paused by the server (pipelining): not the client's fault.
            self._header_timer = self.loop.call_later(
                self.limits.header_timeout, self._headers_too_slow
            )
            return
        if self._in_head and self._nothing_in_flight():
            self._answer_and_close(408, b"Request Timeout")
        else:
            # Never sent a byte (or a response is still being written): nothing
            # to answer.
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self._upgraded or self.transport.is_closing() or not self._in_body:
            return
        if self.flow.read_paused:
            # The app has not asked for more yet, so the client could not send it.
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_too_slow)
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            # The app is still waiting for the body: it sees a disconnect, and
            # whatever it sends from now on is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
            self._answer_and_close(408, b"Request Timeout")
        else:
            self.transport.close()

    def _nothing_in_flight(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _cancel_timers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _answer_and_close(self, status: int, text: bytes, extra_headers: bytes = b"") -> None:
        """A plain-text answer written straight to the socket, then close: the
        app never saw this request (or has been told it is gone)."""
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(text),
                extra_headers,
                b"connection: close\r\n\r\n",
                text,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()


def http_protocol(limits: ClientLimits) -> type[GuardedHttpProtocol]:
    """The protocol class to give `uvicorn.Config(http=...)`."""

    class ConfiguredHttpProtocol(GuardedHttpProtocol):
        pass

    ConfiguredHttpProtocol.limits = limits
    return ConfiguredHttpProtocol


class _RefusalLog:
    """Counts connections refused over the cap and logs them in batches: under a
    flood, one line per connection would be a flood of its own."""

    def __init__(self) -> None:
        self.pending = 0
        self.logged_at = float("-inf")

    def count(self, cap: int) -> None:
        self.pending += 1
        now = time.monotonic()
        if now - self.logged_at >= _REFUSAL_LOG_INTERVAL:
            logger.warning(
                "connection cap of %d reached: refused %d connection(s) with 503",
                cap,
                self.pending,
            )
            self.pending = 0
            self.logged_at = now


_refusals = _RefusalLog()
