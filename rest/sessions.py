"""`/api/sessions`: create, list by wallet, get, rename, delete, archive."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import (
    by_method,
    caller_for_session,
    caller_of,
    header_session,
    int_param,
    is_keyless,
    json_body,
    path_session,
    runtime_of,
)
from rest.shapes import session_summary


async def create_session(request: Request) -> Response:
    name = header_session(request)
    body = await json_body(request) or {}
    public_key = body.get("public_key")
    if public_key is not None and not isinstance(public_key, str):
        raise BadRequest("public_key must be a string")
    runtime = runtime_of(request)
    record, _ = await runtime.conversations.create_session(
        await caller_of(request), name.id, public_key=public_key or None, legacy_id=name.legacy_id
    )
    return JSONResponse({"session_id": name.sent, "title": record.display_title})


async def list_sessions(request: Request) -> Response:
    public_key = request.query_params.get("public_key", "").strip()
    if not public_key:
        raise BadRequest("the public_key query parameter is required")
    limit = int_param(request, "limit", 50, 1, 200)
    runtime = runtime_of(request)
    caller = await caller_of(request)
    # Keyless: `default`'s sessions of the wallet, and those of the apps that chose
    # the legacy rule that a wallet's list is not secret.
    apps = runtime.apps.keyless_listing_apps() if is_keyless(caller) else None
    page = await runtime.conversations.list_sessions(
        caller, public_key=public_key, limit=limit, apps=apps
    )
    return JSONResponse([session_summary(record) for record in page.items])


async def get_session(request: Request) -> Response:
    name = path_session(request)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, name.id)
    record = await runtime.conversations.get_session(caller, name.id)
    return JSONResponse({**session_summary(record), "session_id": name.sent})


async def rename_session(request: Request) -> Response:
    name = path_session(request)
    body = await json_body(request) or {}
    title = body.get("title")
    if not isinstance(title, str) or not title.strip():
        raise BadRequest('a non-empty title is required: {"title": "..."}')
    runtime = runtime_of(request)
    caller = await caller_for_session(request, name.id)
    record = await runtime.conversations.rename_session(caller, name.id, title)
    return JSONResponse({"session_id": name.sent, "title": record.display_title})


async def delete_session(request: Request) -> Response:
    """Idempotent, as the legacy backend: an unknown id answers `deleted: false`."""
    name = path_session(request)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, name.id)
    return JSONResponse({"deleted": await runtime.conversations.delete_session(caller, name.id)})


async def archive(request: Request) -> Response:
    return await _set_archived(request, True)


async def unarchive(request: Request) -> Response:
    return await _set_archived(request, False)


async def _set_archived(request: Request, archived: bool) -> Response:
    name = path_session(request)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, name.id)
    record = await runtime.conversations.set_archived(caller, name.id, archived)
    return JSONResponse({"session_id": name.sent, "is_archived": record.is_archived})


async def export_session(request: Request) -> Response:
    """An extension: the session as JSON (`confab.session/2`) or Markdown, streamed."""
    name = path_session(request)
    format = request.query_params.get("format", "json")
    runtime = runtime_of(request)
    caller = await caller_for_session(request, name.id)
    chunks = await runtime.exports.open(caller, name.id, format)
    media = "application/json" if format == "json" else "text/markdown; charset=utf-8"
    extension = "json" if format == "json" else "md"
    disposition = f'attachment; filename="session-{name.id}.{extension}"'
    return StreamingResponse(
        _encoded(chunks), media_type=media, headers={"Content-Disposition": disposition}
    )


async def _encoded(chunks: AsyncIterator[str]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk.encode()


routes = [
    by_method("/sessions", POST=create_session, GET=list_sessions),
    by_method(
        "/sessions/{session_id}", GET=get_session, PATCH=rename_session, DELETE=delete_session
    ),
    Route("/sessions/{session_id}/archive", archive, methods=["POST"]),
    Route("/sessions/{session_id}/unarchive", unarchive, methods=["POST"]),
    Route("/sessions/{session_id}/export", export_session, methods=["GET"]),
]
