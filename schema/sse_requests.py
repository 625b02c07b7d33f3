"""What a GraphQL over SSE request asks for (schema/sse.py), and how one is refused.

The GraphQL-over-HTTP parameters come from a JSON body (`POST`) or the query string
(`GET`: `query`, `operationName`, and `variables`/`extensions` as JSON). A request
that cannot be read is refused with a 4xx and the usual GraphQL error shape, each
error with `extensions.code`; once the request is read, every problem with the
operation itself arrives on the event stream instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.credentials import app_from_request, key_from_headers
from runtime.errors import ConfabError, RateLimited

TOKEN_HEADER = "x-graphql-event-stream-token"
TOKEN_PARAM = "token"
_STATUS = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "RATE_LIMITED": 429,
    "SERVICE_UNAVAILABLE": 503,
}


class Refusal(Exception):
    """A request refused before any stream: an HTTP status and a GraphQL error."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        headers: dict[str, str] | None = None,
        **extensions: object,
    ) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers
        self.error = {"message": message, "extensions": {"code": code, **extensions}}

    @classmethod
    def of(cls, exc: ConfabError) -> Refusal:
        """A failed authentication, with the status plain HTTP would give it."""
        if isinstance(exc, RateLimited):
            retry = exc.retry_after_seconds
            return cls(429, exc.message, exc.code, {"Retry-After": str(retry)}, retryAfter=retry)
        return cls(_STATUS.get(exc.code, 400), exc.message, exc.code)

    def response(self) -> Response:
        return JSONResponse({"errors": [self.error]}, self.status, headers=self.headers)


def bad_request(message: str, status: int = 400) -> Refusal:
    return Refusal(status, message, "BAD_REQUEST")


def unknown_token() -> Refusal:
    return Refusal(404, "unknown or expired event stream token", "NOT_FOUND")


@dataclass(frozen=True, slots=True)
class Params:
    query: str | None  # None: a persisted query's hash names it (`extensions`)
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def stream_token(request: Request) -> str | None:
    return request.headers.get(TOKEN_HEADER) or request.query_params.get(TOKEN_PARAM) or None


def accepts_event_stream(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(
        part.split(";")[0].strip().lower() == "text/event-stream" for part in accept.split(",")
    )


def has_credentials(request: Request) -> bool:
    """Whether the request names a key or an app at all."""
    headers, query = request.headers, request.query_params
    return key_from_headers(headers) is not None or app_from_request(headers, query) is not None


async def parse_params(request: Request) -> Params:
    body: object
    if request.method == "POST":
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not media.endswith("json"):
            raise bad_request("send the operation as JSON (Content-Type: application/json)", 415)
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise bad_request("the request body is not valid JSON") from None
    else:
        query = request.query_params
        body = {
            "query": query.get("query"),
            "operationName": query.get("operationName"),
            "variables": _json_param(query, "variables"),
            "extensions": _json_param(query, "extensions"),
        }
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    document, name = body.get("query"), body.get("operationName")
    if name is not None and not isinstance(name, str):
        raise bad_request("operationName: must be a string")
    objects: dict[str, dict[str, Any] | None] = {}
    for field in ("variables", "extensions"):
        value = body.get(field)
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"{field}: must be a JSON object")
        objects[field] = value
    persisted = "persistedQuery" in (objects["extensions"] or {})
    if document is None and persisted:
        return Params(None, objects["variables"], name, objects["extensions"])
    if not isinstance(document, str) or not document.strip():
        raise bad_request("query: a GraphQL document (a string) is required")
    return Params(document, objects["variables"], name, objects["extensions"])


def _json_param(query: Mapping[str, str], name: str) -> object:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request(f"{name}: not valid JSON") from None
