"""Reading legacy requests: session headers, app selection, keys, bodies, user state.

The session id is a bearer capability, as in the legacy API: a request with no key
(and no app asked for) may act on any session it names. A request that carries a
key, or asks for an app, is scoped to that app: another app's session is not found.
In strict mode a non-default app's session always needs its own app's key.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rest.errors import BadRequest
from rest.shapes import normalize_user_state
from runtime.apps import Caller
from runtime.core import Runtime
from runtime.credentials import app_from_request, client_host, key_from_headers
from runtime.errors import Unauthenticated
from runtime.records import JSONObject, SessionRecord
from settings import DEFAULT_APP

Endpoint = Callable[[Request], Awaitable[Response]]

SESSION_HEADER = "x-session-id"
THREAD_HEADER = "x-thread-id"  # newer clients, on the /api/thread/* aliases


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def parse_uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value.strip())
    except ValueError:
        raise BadRequest(f"{what} must be a UUID, got {value.strip()[:60]!r}") from None


def header_session_id(request: Request) -> UUID:
    """The session named by `X-Session-Id` (or `X-Thread-Id`): 400 if missing or bad."""
    for header in (SESSION_HEADER, THREAD_HEADER):
        value = request.headers.get(header)
        if value is not None and value.strip():
            return parse_uuid(value, "the X-Session-Id header")
    raise BadRequest("the X-Session-Id header is required")


def path_session_id(request: Request) -> UUID:
    return parse_uuid(request.path_params["session_id"], "the session id in the path")


async def caller_of(request: Request) -> Caller:
    """Who is calling, for requests not about one existing session (create, list)."""
    runtime = runtime_of(request)
    return await runtime.apps.authenticate(
        key_from_headers(request.headers),
        app_from_request(request.headers, request.query_params),
        client_host(request.scope),
    )


async def caller_for_session(request: Request, session_id: UUID) -> Caller:
    """Who may act on this session (see the module docstring). The session is looked
    up only when the request names no key or app (its app decides then)."""
    caller = await _named_caller(request)
    if caller is not None:
        return caller
    return (await caller_and_session(request, session_id))[0]


async def caller_and_session(
    request: Request, session_id: UUID
) -> tuple[Caller, SessionRecord | None]:
    """The caller and the session as stored (any app's, or None): one lookup for
    handlers that need both."""
    runtime = runtime_of(request)
    caller = await _named_caller(request)
    if caller is not None:
        return caller, await runtime.sessions.get(session_id)
    record = await runtime.sessions.get(session_id)
    if record is None or record.app == DEFAULT_APP:
        return Caller(app=DEFAULT_APP), record
    if runtime.settings.strict_keys:
        raise Unauthenticated(f"this session belongs to app {record.app!r}: send its app key")
    return Caller(app=record.app), record


async def _named_caller(request: Request) -> Caller | None:
    """The caller a key or a non-default app in the request names; None for neither."""
    key = key_from_headers(request.headers)
    asked = app_from_request(request.headers, request.query_params)
    if key or (asked is not None and asked != DEFAULT_APP):
        return await runtime_of(request).apps.authenticate(key, asked, client_host(request.scope))
    return None


async def json_body(request: Request) -> JSONObject | None:
    """The JSON object body, or None when absent or empty: 400 if it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        body: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def user_state_param(request: Request) -> JSONObject | None:
    raw = request.query_params.get("user_state")
    if raw is None or not raw.strip():
        return None
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise BadRequest("user_state is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("user_state must be a JSON object")
    return normalize_user_state(value)


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw[:20]!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def by_method(path: str, **handlers: Endpoint) -> Route:
    """One route per path, dispatching on the method, so a 405 lists (in `Allow`)
    every method the path supports."""

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return Route(path, dispatch, methods=list(handlers))
