"""Reading legacy requests: session headers, app selection, keys, bodies, user state.

The session id is a bearer capability, as in the legacy API: a request with no key
(and no app asked for) may act on any session it names. A request that carries a
key, or asks for an app, or comes from a web origin an app lists (`origins` in its
config: the legacy keyless trust for browser widgets), is scoped to that app:
another app's session is not found. In strict mode a non-default app's session
always needs its own app's key, and origins grant nothing.

Session ids are UUIDs or opaque text ids (runtime/session_ids.py).
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
from runtime.errors import RateLimited
from runtime.records import JSONObject, SessionRecord
from runtime.session_ids import SessionName, session_name
from runtime.telemetry.context import app_name
from runtime.validation import opaque_id_arg
from settings import DEFAULT_APP

Endpoint = Callable[[Request], Awaitable[Response]]

SESSION_HEADER = "x-session-id"
THREAD_HEADER = "x-thread-id"  # newer clients, on the /api/thread/* aliases


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def header_session(request: Request) -> SessionName:
    """The session named by `X-Session-Id` (or `X-Thread-Id`): 400 if missing or bad."""
    for header in (SESSION_HEADER, THREAD_HEADER):
        value = request.headers.get(header)
        if value is not None and value.strip():
            return session_name("the X-Session-Id header", value.strip())
    raise BadRequest("the X-Session-Id header is required")


def header_session_id(request: Request) -> UUID:
    return header_session(request).id


def path_session(request: Request) -> SessionName:
    return session_name("the session id in the path", request.path_params["session_id"])


def client_id_param(request: Request) -> str | None:
    """The legacy client a request names (`client_id`), checked; None if absent."""
    raw = request.query_params.get("client_id")
    return None if raw is None or raw == "" else opaque_id_arg("client_id", raw)


async def caller_of(request: Request) -> Caller:
    """Who is calling, for requests not about one existing session (create, list)."""
    caller = await _named_caller(request) or Caller(
        app=DEFAULT_APP, client=client_host(request.scope)
    )
    await _admit(request, caller, None)
    return caller


def is_keyless(caller: Caller) -> bool:
    """Neither a key nor a listed origin vouches for the caller's app."""
    return caller.app == DEFAULT_APP and not caller.has_key


async def caller_for_session(request: Request, session_id: UUID) -> Caller:
    """Who may act on this session (see the module docstring). The session is looked
    up only when the request names no key or app (its app decides then)."""
    caller = await _named_caller(request)
    if caller is not None:
        await _admit(request, caller, None)
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
        record = await runtime.conversations.stored_session(caller, session_id)
    else:
        caller, record = await _bearer(request, session_id)
    await _admit(request, caller, record)
    return caller, record


async def _bearer(request: Request, session_id: UUID) -> tuple[Caller, SessionRecord | None]:
    """A caller known by the session id alone acts in the session's app."""
    runtime = runtime_of(request)
    return await runtime.conversations.bearer(
        session_id, client_host(request.scope), strict=runtime.settings.strict_keys
    )


async def _admit(request: Request, caller: Caller, record: SessionRecord | None) -> None:
    """Count the request against its app's rate limits (once, however many times a
    handler asks who calls); a refusal about a session also tells its live UI."""
    if getattr(request.state, "admitted", False):
        return
    request.state.admitted = True
    app_name.set(caller.app)  # for the request's log lines
    limits = runtime_of(request).limits
    try:
        await limits.request(caller)
    except RateLimited as refused:
        if record is not None and record.app == caller.app:
            await limits.slowed(record, refused)
        raise


async def _named_caller(request: Request) -> Caller | None:
    """The caller a key, a non-default app or a listed web origin in the request
    names; None for none of them."""
    runtime = runtime_of(request)
    key = key_from_headers(request.headers)
    asked = app_from_request(request.headers, request.query_params)
    origin_app = (
        None
        if runtime.settings.strict_keys
        else runtime.apps.app_of_origin(request.headers.get("origin"))
    )
    if key or origin_app or (asked is not None and asked != DEFAULT_APP):
        return await runtime.apps.authenticate(key, asked, client_host(request.scope), origin_app)
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
