"""`GET /api/updates`: a session's events as Server-Sent Events.

Each event is an `id: <cursor>` line and a `data: <json>` line; a client that
reconnects with `Last-Event-ID` first gets what it missed (within the replay
window), then live events, with no gap and no duplicate. A `: keep-alive` comment
goes out whenever nothing else has for `CONFAB_SSE_KEEPALIVE` seconds. The stream
ends when the client goes away or the server shuts down, or, for a stream opened
with an app key, when that key is revoked (within the key cache time; see
runtime/key_watch.py): a last `system_notice` with `code: "UNAUTHENTICATED"` says
so first.

A stream opened with the session id alone may be opened before the session
exists; it follows the session into whichever app creates or claims it (any
replica's events reach it through the bus). A stream opened with a key stays in
that key's app. Events name the session by the id the client sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import caller_for_session, header_session, runtime_of
from runtime.apps import Caller
from runtime.events import RESYNC_REQUIRED, Event, SubscriberOverflow
from runtime.events.envelope import (
    INTERNAL_TYPES,
    SYSTEM_NOTICE,
    TITLE_CHANGED,
    TOOL_COMPLETE,
    TOOL_UPDATE,
)

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def updates(request: Request) -> Response:
    name = header_session(request)
    after = _last_event_id(request)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, name.id)
    # Checked here too, so that another app's session is a 404 response rather
    # than a stream that fails once started.
    conversations = runtime.conversations
    conversations.addressed(
        caller, await conversations.stored_session(caller, name.id), follow=True
    )
    stream = _stream(
        request, caller, name.sent, runtime.conversations.watching(caller, name.id, after=after)
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


async def _stream(
    request: Request,
    caller: Caller,
    session_id: str,
    watching: contextlib.AbstractAsyncContextManager[AsyncIterator[Event]],
) -> AsyncIterator[str]:
    runtime = runtime_of(request)
    shutting_down: asyncio.Event = request.app.state.shutting_down
    keepalive = runtime.settings.sse_keepalive
    async with watching as events:
        yield ": connected\n\n"
        iterator = aiter(events)
        next_event: asyncio.Future[Event] = asyncio.ensure_future(anext(iterator))
        stop: asyncio.Future[Any] = asyncio.ensure_future(shutting_down.wait())
        # Settled if the stream's key is revoked (runtime/key_watch.py).
        revoked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        hold = (
            None
            if caller.key_prefix is None
            else runtime.apps.key_watch.hold(caller.key_prefix, lambda: _settle(revoked))
        )
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {next_event, stop, revoked}
                done, _ = await asyncio.wait(
                    waiting, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                if stop in done:
                    return
                if revoked in done:
                    yield _revoked_notice(session_id)
                    return
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    return
                except SubscriberOverflow as exc:
                    yield f": closed: {exc.message}\n\n"
                    return
                data = legacy_event(event, session_id)
                if data is not None:
                    yield f"id: {event.id}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
                next_event = asyncio.ensure_future(anext(iterator))
        finally:
            if hold is not None:
                hold.release()
            for task in (next_event, stop, revoked):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await next_event


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _revoked_notice(session_id: str) -> str:
    """The stream's last event: shaped as a `system_notice` (which legacy clients
    show) with the error code a request with the key now gets."""
    notice = {
        "type": SYSTEM_NOTICE,
        "session_id": session_id,
        "message": "the app key this stream was opened with was revoked; the stream is closed",
        "code": "UNAUTHENTICATED",
    }
    return f"data: {json.dumps(notice, separators=(',', ':'))}\n\n"


def legacy_event(event: Event, session_id: str) -> dict[str, Any] | None:
    """The event as legacy clients read it (naming the session by `session_id`, the
    id the client sent), or None for the richer GraphQL-only ones."""
    base: dict[str, Any] = {"type": event.type, "session_id": session_id}
    data = event.data
    if event.type == TITLE_CHANGED:
        return {**base, "new_title": data.get("new_title")}
    if event.type in (TOOL_UPDATE, TOOL_COMPLETE):
        return {
            **base,
            "id": data.get("id"),
            "call_id": data.get("call_id"),
            "tool_name": data.get("tool_name"),
            "result": data.get("result"),
        }
    if event.type == SYSTEM_NOTICE:
        # A notice about a refusal (rate limits) also says its code and wait.
        extra: dict[str, Any] = {k: data[k] for k in ("code", "retry_after") if k in data}
        return {**base, "message": data.get("message"), **extra}
    if event.type == RESYNC_REQUIRED:
        return {**base, "code": data.get("code"), "message": data.get("message")}
    if event.type in INTERNAL_TYPES:
        return None
    return {**base, **{k: v for k, v in data.items() if k not in base}}  # custom types


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BadRequest(f"Last-Event-ID must be an event id, got {raw[:40]!r}")
    return int(raw)


routes = [
    Route("/updates", updates, methods=["GET"]),
    Route("/thread/updates", updates, methods=["GET"]),
]
