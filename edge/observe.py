"""The outermost middleware: request ids, the access log, HTTP metrics and spans.

- Every HTTP request and WebSocket connection gets a request id: the client's
  `X-Request-Id` when it is short and safe, else a new one; it is kept in a
  context variable for every log line and span of the request (and the turn it
  queues, runtime/telemetry/context.py) and returned in the `X-Request-Id`
  header (of the WebSocket handshake's answer too).
- One access line per HTTP request once it has been answered (logger
  `confab.access`, INFO: method, path without the query, route, status, duration);
  a WebSocket logs when it is accepted and when it closes.
- `confab_http_requests_total` and `confab_http_request_duration_seconds` by
  route template (`/api/sessions/{session_id}`, never the raw path; "unmatched"
  for paths no route serves), method and status; the open WebSocket connections
  and event streams (`text/event-stream` answers) as a gauge.
- A span per request when tracing is on (runtime/telemetry/tracing.py).

Answers the edge's protocol writes itself (408, 431, 503 over the connection cap)
never reach the app, so they are not counted here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.telemetry import tracing
from runtime.telemetry.context import HEADER, accepted_request_id, request_id
from runtime.telemetry.metrics import Metrics

access_log = logging.getLogger("confab.access")

UNMATCHED = "unmatched"
_HEADER_BYTES = HEADER.encode()
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: dict[int, str] = {}
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._durations: dict[tuple[str, str], Any] = {}
        if metrics is not None:
            self._websockets = metrics.open_connections.labels("websocket")
            self._streams = metrics.open_connections.labels("sse")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, receive, send)
            return
        sent = None
        for name, value in scope["headers"]:
            if name == _HEADER_BYTES:
                sent = value
                break
        rid = accepted_request_id(sent)
        token = request_id.set(rid)
        try:
            if kind == "http":
                await self._http(scope, receive, send, rid)
            else:
                # Inline, with a slotted send: thousands of idle WebSockets each
                # hold this frame and that object for their whole life.
                answer = _WebSocketSend(self, scope, send, rid)
                try:
                    await self.app(scope, receive, answer)
                finally:
                    answer.closed()
        finally:
            request_id.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        started = time.perf_counter()
        root = scope.get("root_path", "")
        header = (_HEADER_BYTES, rid.encode())
        status = 500
        streaming = False
        metrics = self.metrics

        async def answer(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                if metrics is not None and _is_event_stream(headers):
                    streaming = True
                    self._streams.inc()
                message["headers"] = [*headers, header]
            await send(message)

        method: str = scope["method"]
        with tracing.span("HTTP " + method) as current:
            try:
                await self.app(scope, receive, answer)
            finally:
                if streaming:
                    self._streams.dec()
                elapsed = time.perf_counter() - started
                route = self._template(scope, root)
                if method not in _METHODS:
                    method = "other"
                if metrics is not None:
                    self._count(route, method, status, elapsed)
                if current is not None:
                    current.update_name(f"HTTP {method} {route}")
                    current.set_attribute("http.request.method", method)
                    current.set_attribute("http.route", route)
                    current.set_attribute("http.response.status_code", status)
                if access_log.isEnabledFor(logging.INFO):
                    access_log.info(
                        "%s %s %d %.1fms",
                        method,
                        scope["path"],
                        status,
                        elapsed * 1000,
                        extra={
                            "method": method,
                            "path": scope["path"],
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 3),
                            "client": _client(scope),
                        },
                    )

    def _count(self, route: str, method: str, status: int, elapsed: float) -> None:
        assert self.metrics is not None
        key = (route, method, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.metrics.http_requests.labels(
                route, method, str(status)
            )
        counter.inc()
        pair = (route, method)
        histogram = self._durations.get(pair)
        if histogram is None:
            histogram = self._durations[pair] = self.metrics.http_duration.labels(route, method)
        histogram.observe(elapsed)

    def _template(self, scope: Scope, root: str) -> str:
        """The matched route's path template, with its mounts' prefixes."""
        route = scope.get("route")
        if route is None or isinstance(route, Mount):
            return UNMATCHED
        template = self._templates.get(id(route))
        if template is None:
            prefix = scope.get("root_path", "")[len(root) :]
            template = prefix + getattr(route, "path", UNMATCHED)
            self._templates[id(route)] = template
        return template


def _is_event_stream(headers: Any) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return bool(value.startswith(b"text/event-stream"))
    return False


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


class _WebSocketSend:
    """A WebSocket's `send`: the handshake's answer gets the request id, and the
    connection is counted and logged from its acceptance to its close."""

    __slots__ = ("_accepted", "_header", "_observe", "_path", "_scope", "_send", "_started")

    def __init__(self, observe: Observe, scope: Scope, send: Send, rid: str) -> None:
        self._observe = observe
        self._scope = scope
        self._send = send
        self._path: str = scope["path"]
        self._header = (_HEADER_BYTES, rid.encode())
        self._started = time.perf_counter()
        self._accepted = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "websocket.accept":
            message["headers"] = [*(message.get("headers") or []), self._header]
            self._accepted = True
            if self._observe.metrics is not None:
                self._observe._websockets.inc()
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "WS %s accepted",
                    self._path,
                    extra={"path": self._path, "status": 101, "client": _client(self._scope)},
                )
        await self._send(message)

    def closed(self) -> None:
        if not self._accepted:
            return
        if self._observe.metrics is not None:
            self._observe._websockets.dec()
        if access_log.isEnabledFor(logging.INFO):
            elapsed = time.perf_counter() - self._started
            access_log.info(
                "WS %s closed after %.1fs",
                self._path,
                elapsed,
                extra={"path": self._path, "duration_ms": round(elapsed * 1000, 3)},
            )
