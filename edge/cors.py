"""One CORS policy for every HTTP route (GraphQL, REST, health), from
`CONFAB_CORS_ORIGINS`.

A pure ASGI middleware, outermost in the app, so everything answered inside it
carries the same headers: routes, the edge's early refusals (a 413 or a 400 a page
must be able to read), 404s and 405s. Preflights (`OPTIONS` with
`Access-Control-Request-Method`) are answered here and never reach a route.

- `*` (the default): `Access-Control-Allow-Origin: *` on every answer, never with
  `Access-Control-Allow-Credentials` (browsers refuse the pair; a page sends its
  app key in a header, which needs no credentials mode).
- A list of origins: the request's `Origin` is echoed when listed, with
  `Access-Control-Allow-Credentials: true`; every answer says `Vary: Origin`, so a
  cache (a CDN in front of persisted-query GETs) never serves one origin's answer
  to another.

Every header is encoded once, when the app is built: a request without `Origin`
costs one pass over its headers, and with `*` one header appended to the answer.
WebSockets pass through untouched (their origin rule is `CONFAB_ALLOWED_ORIGINS`).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ALLOWED_HEADERS = (
    # App keys and the app selector (runtime/credentials.py).
    "AOMI-APP-KEY",
    "X-API-Key",
    "Authorization",
    "X-Confab-App",
    # Bodies, content negotiation, resuming an event stream.
    "Content-Type",
    "Accept",
    "Last-Event-ID",
    # The REST layer's identity headers (rest/request.py).
    "X-Session-Id",
    "X-Thread-Id",
    # graphql-sse's single connection mode (schema/sse_requests.py).
    "X-GraphQL-Event-Stream-Token",
    # Apollo Client's client awareness and operation name headers.
    "apollographql-client-name",
    "apollographql-client-version",
    "X-Apollo-Operation-Name",
    "Apollo-Require-Preflight",
    # Tracing through proxies.
    "X-Request-Id",
)
# What a page may read of an answer beyond the safelisted headers.
EXPOSED_HEADERS = ("Retry-After",)
MAX_AGE = 600  # seconds a browser may reuse a preflight's answer


class CorsPolicy:
    """Which origins may read Confab's answers, and the headers that say so."""

    def __init__(self, origins: Iterable[str]) -> None:
        listed = tuple(origin.strip().rstrip("/") for origin in origins if origin.strip())
        self.any_origin = "*" in listed
        self.origins = frozenset(o.encode("latin-1") for o in listed if o != "*")
        self._exposed = (b"access-control-expose-headers", ", ".join(EXPOSED_HEADERS).encode())
        self._preflight = [
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
            (b"access-control-max-age", str(MAX_AGE).encode()),
        ]
        self._any = [(b"access-control-allow-origin", b"*")]

    def headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """The headers of an answer to a request from `origin` (None: no `Origin`)."""
        if self.any_origin:
            return self._any if origin is None else [*self._any, self._exposed]
        if origin is None or origin not in self.origins:
            return [(b"vary", b"Origin")]
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
            self._exposed,
        ]

    def allows(self, origin: bytes) -> bool:
        return self.any_origin or origin in self.origins

    def preflight_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        return [*self.headers(origin), *self._preflight]


class Cors:
    """The middleware: `Middleware(Cors, origins=settings.cors_origins)`."""

    def __init__(self, app: ASGIApp, origins: Iterable[str]) -> None:
        self.app = app
        self.policy = CorsPolicy(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin: bytes | None = None
        preflight = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                preflight = True
        if preflight and origin is not None and scope["method"] == "OPTIONS":
            await self._preflight(origin, send)
            return
        policy = self.policy
        extra = policy.headers(origin)
        await self.app(scope, receive, _WithHeaders(send, extra, not policy.any_origin))

    async def _preflight(self, origin: bytes, send: Send) -> None:
        policy = self.policy
        if policy.allows(origin):
            status, headers, body = 204, policy.preflight_headers(origin), b""
        else:
            body = (
                b'{"error":"this origin is not allowed by the CORS policy (CONFAB_CORS_ORIGINS)"}'
            )
            status = 403
            headers = [
                *policy.headers(origin),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _WithHeaders:
    """The app's `send`, adding the policy's headers to the response start (a `Vary`
    the app set itself gains `Origin` rather than a second `Vary`)."""

    __slots__ = ("_extra", "_send", "_varies")

    def __init__(self, send: Send, extra: list[tuple[bytes, bytes]], varies: bool) -> None:
        self._send = send
        self._extra = extra
        self._varies = varies

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            extra = self._extra
            if self._varies:
                for index, (name, value) in enumerate(headers):
                    if name.lower() == b"vary":
                        headers[index] = (name, value + b", Origin")
                        extra = [(n, v) for n, v in extra if n != b"vary"]
                        break
            headers.extend(extra)
            message = {**message, "headers": headers}
        await self._send(message)
