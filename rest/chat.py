"""`/api/chat`, `/api/state`, `/api/interrupt`, `/api/system`, `/api/events`."""

from __future__ import annotations

import json
from typing import Any
from weakref import WeakKeyDictionary

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import (
    caller_and_session,
    caller_for_session,
    client_id_param,
    header_session,
    header_session_id,
    int_param,
    json_body,
    runtime_of,
    user_state_param,
)
from rest.shapes import message as legacy_message
from rest.shapes import snapshot, system_event
from rest.snapshot_bodies import SnapshotBodies
from runtime.apps import Caller
from runtime.core import Runtime
from runtime.records import SessionRecord


async def chat(request: Request) -> Response:
    name = header_session(request)
    message = request.query_params.get("message")
    if message is None:
        body = await json_body(request) or {}
        found = body.get("message", body.get("text"))
        message = found if isinstance(found, str) else None
    if message is None or not message.strip():
        raise BadRequest("the message parameter is required and must not be blank")
    user_state = user_state_param(request)
    client_id = client_id_param(request)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, name.id)
    record = await runtime.turns.send_message(
        caller,
        name.id,
        message,
        user_state=user_state,
        public_key=request.query_params.get("public_key") or None,
        legacy_id=name.legacy_id,
        client_id=client_id,
    )
    return await _snapshot(request, caller, record)


async def state(request: Request) -> Response:
    session_id = header_session_id(request)
    user_state = user_state_param(request)
    client_id = client_id_param(request)
    runtime = runtime_of(request)
    caller, stored = await caller_and_session(request, session_id)
    record = runtime.conversations.addressed(caller, stored)
    if record is None:
        return JSONResponse(snapshot(None, [], [], None))
    if user_state is not None and user_state != record.user_state:
        record = await runtime.conversations.update_user_state(caller, session_id, user_state)
    if client_id is not None and client_id != record.client_id:
        record = await runtime.conversations.associate_client(caller, session_id, client_id)
    return await _snapshot(request, caller, record)


async def interrupt(request: Request) -> Response:
    session_id = header_session_id(request)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, session_id)
    return await _snapshot(request, caller, await runtime.turns.interrupt(caller, session_id))


async def system(request: Request) -> Response:
    """Store a system message, creating the session like chat does (the CLI syncs
    the wallet this way before its first chat); answers the stored message."""
    name = header_session(request)
    message = request.query_params.get("message")
    if message is None:
        body = await json_body(request) or {}
        found = body.get("message")
        message = found if isinstance(found, str) else None
    if message is None or not message.strip():
        raise BadRequest("the message parameter is required and must not be blank")
    event = _typed_object(message)
    runtime = runtime_of(request)
    conversations = runtime.conversations
    conversations.check_system_message(message, event)  # bad input creates nothing
    client_id = client_id_param(request)
    caller = await caller_for_session(request, name.id)
    await conversations.ensure_session(
        caller, name.id, legacy_id=name.legacy_id, client_id=client_id
    )
    stored = await conversations.add_system_message(caller, name.id, message, event=event)
    return JSONResponse({"res": legacy_message(stored)})


async def events(request: Request) -> Response:
    session_id = header_session_id(request)
    count = int_param(request, "count", 1000, 1, 1000)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, session_id)
    records = await runtime.conversations.list_system_events(caller, session_id, 0, 1000)
    return JSONResponse([system_event(record) for record in records[-count:]])


async def _snapshot(request: Request, caller: Caller, record: SessionRecord) -> Response:
    runtime = runtime_of(request)
    shot = await runtime.snapshots.read(caller, record)
    bodies = _bodies.get(runtime)
    if bodies is None:
        bodies = _bodies[runtime] = SnapshotBodies()
    return bodies.response(shot, runtime.conversations, runtime.snapshots.window)


# One per runtime: a process may run several (tests do).
_bodies: WeakKeyDictionary[Runtime, SnapshotBodies] = WeakKeyDictionary()


def _typed_object(message: str) -> dict[str, Any] | None:
    try:
        value = json.loads(message)
    except (json.JSONDecodeError, RecursionError):  # free text, however it is nested
        return None
    if isinstance(value, dict) and isinstance(value.get("type"), str) and value["type"]:
        return value
    return None


routes = [
    Route("/chat", chat, methods=["POST"]),
    Route("/state", state, methods=["GET"]),
    Route("/interrupt", interrupt, methods=["POST"]),
    Route("/system", system, methods=["POST"]),
    Route("/events", events, methods=["GET"]),
    # Newer clients: the same endpoints under /api/thread with X-Thread-Id.
    Route("/thread/chat", chat, methods=["POST"]),
    Route("/thread/state", state, methods=["GET"]),
]
