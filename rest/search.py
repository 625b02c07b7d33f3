"""`GET /api/search`: an extension for legacy-style clients, the same search as
GraphQL's `search` (runtime/search.py), in the REST layer's snake_case.

Without a key or a listed origin a caller names a wallet (`public_key`), as for
the keyless session listing: it searches that wallet's sessions of `default`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import caller_of, int_param, is_keyless, runtime_of
from runtime.records import Role
from runtime.search import SEARCH_PAGE_MAX, SearchFilters, SearchHit, parse_search_cursor
from runtime.validation import uuid_arg

_FLAGS = {"true": True, "false": False}
T = TypeVar("T")


async def search(request: Request) -> Response:
    params = request.query_params
    caller = await caller_of(request)
    public_key = params.get("public_key") or None
    if is_keyless(caller) and public_key is None:
        raise BadRequest("without an app key, search needs the public_key of a wallet")
    filters = SearchFilters(
        public_key=public_key,
        thread_id=uuid_arg("thread_id", params["thread_id"]) if params.get("thread_id") else None,
        role=_choice(params, "role", {r.value: r for r in Role}),
        archived=_choice(params, "archived", _FLAGS),
        since=_time(params, "since"),
        until=_time(params, "until"),
        all_versions=_choice(params, "all_versions", _FLAGS) or False,
    )
    results = await runtime_of(request).search.search(
        caller,
        params.get("q", ""),
        filters,
        first=int_param(request, "limit", 20, 1, SEARCH_PAGE_MAX),
        after=parse_search_cursor("cursor", params["cursor"]) if params.get("cursor") else None,
    )
    return JSONResponse(
        {
            "hits": [_hit(hit) for hit in results.hits],
            "has_more": results.has_next,
            "next_cursor": results.end_cursor if results.has_next else None,
        }
    )


def _hit(hit: SearchHit) -> dict[str, Any]:
    message = hit.message
    return {
        "kind": hit.kind.value,
        "session_id": hit.session.public_id,
        "session_title": hit.session.display_title,
        "thread_id": None if hit.thread_id is None else str(hit.thread_id),
        "message": None
        if message is None
        else {
            "id": str(message.id),
            "role": message.role.value,
            "content": message.content,
            "seq": message.seq,
            "created_at": message.created_at.isoformat(),
        },
        "snippet": hit.snippet,
        "parts": [{"text": p.text, "highlighted": p.highlighted} for p in hit.parts],
        "rank": hit.rank,
        "cursor": hit.cursor,
    }


def _choice(params: Any, name: str, choices: dict[str, T]) -> T | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise BadRequest(f"{name} must be one of {', '.join(choices)}, got {raw[:20]!r}")
    return choices[raw]


def _time(params: Any, name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time, got {raw[:40]!r}") from None


routes = [Route("/search", search, methods=["GET"])]
