"""Bounded requests: a body over its route's limit is refused before it is read
whole, and JSON nested deeper than the limit never reaches a parser (in a body,
in a query parameter read as JSON, or in a WebSocket message).

A pure ASGI middleware (no `BaseHTTPMiddleware`: that would add a task and a
stream per request). For a request without a body it costs one pass over the
headers; with a body, it reads the body first (bounded by the limit), checks it,
and replays it to the app as one message. Reading first is what lets it refuse a
chunked body as soon as the running total passes the limit, and the buffered body
is what the app would have assembled anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge.json_depth import nests_deeper_than
from edge.refusals import (
    DRAIN_BYTES,
    TOO_DEEP,
    TOO_LARGE,
    Refusal,
    graphql_refusal,
    rest_refusal,
)
from edge.ws_messages import DepthCheckedReceive
from settings import Settings

# Bodies that are not JSON (uploads, forms): their brackets mean nothing.
_NOT_JSON = (b"multipart/", b"application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Surface:
    """A family of routes: its body limit, the query parameters it parses as
    JSON, and how it says no."""

    limit: int
    json_params: frozenset[str]
    too_large: Refusal
    too_deep: Refusal


def graphql_surface(limit: int, depth: int) -> Surface:
    return Surface(
        limit,
        frozenset({"variables", "extensions"}),
        graphql_refusal(
            413,
            f"the request body is larger than {limit} bytes",
            {"code": TOO_LARGE, "maxSize": limit},
        ),
        graphql_refusal(
            400, f"JSON nested deeper than {depth} levels", {"code": TOO_DEEP, "maxDepth": depth}
        ),
    )


def rest_surface(limit: int, depth: int, json_params: frozenset[str]) -> Surface:
    return Surface(
        limit,
        json_params,
        rest_refusal(413, f"the request body is larger than {limit} bytes"),
        rest_refusal(400, f"JSON nested deeper than {depth} levels"),
    )


class RequestLimits:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.depth = settings.json_max_depth
        self.graphql = graphql_surface(settings.graphql_max_body_bytes, self.depth)
        # `user_state` is the one REST query parameter read as JSON.
        self.rest = rest_surface(
            settings.rest_max_body_bytes, self.depth, frozenset({"user_state"})
        )
        # Anything else (health, benchmark endpoints, unknown paths): the larger
        # limit, in the REST shape the app's own 404 and 405 use.
        largest = max(settings.graphql_max_body_bytes, settings.rest_max_body_bytes)
        self.other = rest_surface(largest, self.depth, frozenset())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                receive = DepthCheckedReceive(receive, send, self.depth)
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/graphql"):
            surface = self.graphql
        elif path.startswith("/api/") or path == "/api":
            surface = self.rest
        else:
            surface = self.other

        length, chunked, content_type, expects_continue = _framing(scope["headers"])
        body: bytes | None = None
        if length is not None and length > surface.limit:
            # Said up front: refused without reading a byte (and without the
            # "100 Continue" a client that asked for one is waiting for: it will
            # not send the body, so the connection cannot carry on after it).
            close = expects_continue or length > DRAIN_BYTES
            await surface.too_large.send(send, close)
            return
        if chunked or length:
            try:
                body = await _read_body(receive, surface.limit)
            except _TooLarge:
                # Of unknown length: the server drains what follows, up to its
                # limit, and then closes.
                await surface.too_large.send(send)
                return
            except _Disconnected:
                return
        if (
            body is not None
            and not content_type.startswith(_NOT_JSON)
            and nests_deeper_than(body, self.depth)
        ) or self._query_too_deep(scope["query_string"], surface):
            await surface.too_deep.send(send)
            return
        await self.app(scope, receive if body is None else _Replay(body, receive), send)

    def _query_too_deep(self, query: bytes, surface: Surface) -> bool:
        if not query or not surface.json_params:
            return False
        # Every bracket is "{", "[", or percent-encoded (so it has a "%"): no more
        # of those than the limit, no need to decode anything.
        if query.count(b"{") + query.count(b"[") + query.count(b"%") <= self.depth:
            return False
        # Decoded as Starlette's `QueryParams` decodes it.
        return any(
            name in surface.json_params and nests_deeper_than(value.encode(), self.depth)
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        )


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bytes, bool]:
    """Content-Length (None if absent), whether the body is framed otherwise (a
    transfer coding), the content type, and whether the client waits for a
    "100 Continue" before it sends the body."""
    length: int | None = None
    chunked = False
    content_type = b""
    expects_continue = False
    for name, value in headers:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                # The server's parser refuses these; if one got through, its
                # body is still counted as it is read.
                chunked = True
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"content-type":
            content_type = value.lower()
        elif name == b"expect":
            expects_continue = value.lower() == b"100-continue"
    return length, chunked, content_type, expects_continue


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, or `_TooLarge` as soon as more than `limit` bytes came.

    Refusing stops reading: the server then stops buffering the body (its flow
    control pauses the socket after 64 KiB, and once the answer is sent it drops
    what still comes), so the rest is never in memory.
    """
    message = await receive()
    if message["type"] != "http.request":
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _TooLarge
        return body
    chunks = [body]
    size = len(body)
    while True:
        if size > limit:
            raise _TooLarge
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    if size > limit:
        raise _TooLarge
    return b"".join(chunks)


class _Replay:
    """The app's `receive`: the buffered body as one message, then the server's
    own (which reports the disconnect)."""

    __slots__ = ("_body", "_receive")

    def __init__(self, body: bytes, receive: Receive) -> None:
        self._body: bytes | None = body
        self._receive = receive

    async def __call__(self) -> Message:
        body = self._body
        if body is None:
            return await self._receive()
        self._body = None
        return {"type": "http.request", "body": body, "more_body": False}
