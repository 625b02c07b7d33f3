"""The answers the edge gives instead of the app, in each surface's error shape.

GraphQL clients read `errors[].extensions.code`; REST clients read `{"error"}`.
Every refusal is encoded once, when the app is built: refusing costs a send, not
an allocation. The CORS headers a browser needs to read a refusal are added by the
app's one CORS policy (edge/cors.py), which sits outside the edge's middleware.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import Send

TOO_LARGE = "REQUEST_TOO_LARGE"
TOO_DEEP = "JSON_TOO_DEEP"

# What is left of a refused body, up to this much, is read and dropped after the
# answer (see `edge.protocol`), so that a client still sending it can then read
# the answer, and keep its connection. Beyond it the connection is closed, and a
# client that is still writing may see a reset instead of the answer.
DRAIN_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Refusal:
    status: int
    body: bytes

    async def send(
        self, send: Send, close: bool = False, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Answer; `close` when the rest of the body is not worth reading."""
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode("ascii")),
            *(extra or ()),
        ]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def graphql_refusal(status: int, message: str, extensions: dict[str, object]) -> Refusal:
    error = {"message": message, "extensions": extensions}
    return Refusal(status, _encode({"errors": [error]}))


def rest_refusal(status: int, message: str) -> Refusal:
    return Refusal(status, _encode({"error": message}))


def _encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
