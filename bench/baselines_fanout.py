"""Fan-out endpoints for the benchmark suite (mounted only with `CONFAB_BENCH_BASELINES`).

- `POST /bench/publish?session=&count=&interval_ms=` publishes `tool_update` events
  to a session through the runtime's announcer, exactly as a running tool does; the
  events reach subscribers through the real bus (Redis pub/sub in production).
- `WS /bench/raw/ws` and `POST /bench/raw/broadcast?count=&interval_ms=` are the raw
  baseline: plain Starlette WebSockets held in a set, and a loop sending each of them
  the bytes a `toolUpdate` subscriber with operation id "1" would receive.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from rest.request import runtime_of
from runtime.events.envelope import TOOL_UPDATE, utc_now
from runtime.validation import uuid_arg

# The raw subscribers live for the process; one benchmark at a time uses them.
_raw_subscribers: set[WebSocket] = set()


def tool_progress(step: int, count: int) -> dict[str, Any]:
    """The `tool_update` data both sides send: a tool reporting its progress."""
    return {
        "id": "bench-run",
        "call_id": "bench-call",
        "tool_name": "bench_tool",
        "result": {"status": "running", "progress": {"step": step, "of": count}},
    }


def _pacing(request: Request) -> tuple[int, float]:
    count = int(request.query_params.get("count", "100"))
    interval = float(request.query_params.get("interval_ms", "0")) / 1000
    return count, interval


async def publish(request: Request) -> Response:
    runtime = runtime_of(request)
    session = await runtime.sessions.get(uuid_arg("session", request.query_params["session"]))
    if session is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    count, interval = _pacing(request)
    for step in range(1, count + 1):
        await runtime.announcer.publish(session, TOOL_UPDATE, tool_progress(step, count))
        if interval:
            await asyncio.sleep(interval)
    return JSONResponse({"published": count})


async def raw_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    _raw_subscribers.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        _raw_subscribers.discard(websocket)


async def raw_broadcast(request: Request) -> Response:
    count, interval = _pacing(request)
    for step in range(1, count + 1):
        event = {
            **tool_progress(step, count),
            "cursor": str(step),
            "ts": utc_now().isoformat(),
        }
        text = json.dumps(
            {
                "id": "1",
                "type": "next",
                "payload": {
                    "data": {
                        "toolUpdate": {
                            "cursor": event["cursor"],
                            "toolName": event["tool_name"],
                            "result": event["result"],
                            "ts": event["ts"],
                        }
                    }
                },
            }
        )
        for websocket in list(_raw_subscribers):
            await websocket.send_text(text)
        if interval:
            await asyncio.sleep(interval)
    return JSONResponse({"published": count, "subscribers": len(_raw_subscribers)})


routes = [
    Route("/bench/publish", publish, methods=["POST"]),
    WebSocketRoute("/bench/raw/ws", raw_ws),
    Route("/bench/raw/broadcast", raw_broadcast, methods=["POST"]),
]
