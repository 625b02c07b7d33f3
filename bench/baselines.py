"""Raw baseline endpoints for the benchmark suite (mounted only when
`CONFAB_BENCH_BASELINES` is set): the same data from the same runtime services,
serialized with plain `json`, with no GraphQL and no legacy shaping. What the
suite divides Confab's figures by."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench import baselines_fanout
from rest.request import runtime_of
from runtime.store import MessageWindow
from runtime.validation import uuid_arg

SNAPSHOT_MESSAGES = 20


async def raw_snapshot(request: Request) -> Response:
    """Title, processing flag and the last 20 messages of a session."""
    runtime = runtime_of(request)
    session_id = uuid_arg("id", request.query_params["id"])
    session = await runtime.sessions.get(session_id)
    if session is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    page = await runtime.store.list_messages(
        session_id, MessageWindow(limit=SNAPSHOT_MESSAGES, from_end=True)
    )
    return JSONResponse(
        {
            "title": session.display_title,
            "isProcessing": session.is_processing,
            "messages": [
                {
                    "id": str(m.id),
                    "role": m.role.value,
                    "content": m.content,
                    "createdAt": m.created_at.isoformat(),
                }
                for m in page.items
            ],
        }
    )


routes = [
    Route("/bench/raw/snapshot", raw_snapshot, methods=["GET"]),
    *baselines_fanout.routes,
]
