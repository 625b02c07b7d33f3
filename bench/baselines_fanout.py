"""Fan-out endpoints for the benchmark suite (mounted only with `CONFAB_BENCH_BASELINES`).

- `POST /bench/publish?session=&count=&interval_ms=` publishes `tool_update` events
  to a session through the runtime's announcer, exactly as a running tool does, on a
  fixed schedule (`interval_ms` apart from the start); the events reach subscribers
  through the real bus (Redis pub/sub in production).
- `WS /bench/raw/ws` and `POST /bench/raw/broadcast?count=&interval_ms=` are the raw
  baseline: plain Starlette WebSockets held in a set, and a loop sending all of them
  at once the bytes a `toolUpdate` subscriber with operation id "1" would receive.
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


async def _on_pace(started: float, step: int, interval: float) -> None:
    """Wait for the step's slot on a fixed schedule (not `interval` after the last
    publish, which would let a slow publish stretch the whole run)."""
    if interval:
        delay = started + step * interval - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)


async def publish(request: Request) -> Response:
    runtime = runtime_of(request)
    session = await runtime.sessions.get(uuid_arg("session", request.query_params["session"]))
    if session is None:
        return JSONResponse({"error": "not found"}, status_code=404)
    count, interval = _pacing(request)
    started = asyncio.get_running_loop().time()
    for step in range(1, count + 1):
        await _on_pace(started, step - 1, interval)
        await runtime.announcer.publish(session, TOOL_UPDATE, tool_progress(step, count))
    took = asyncio.get_running_loop().time() - started
    return JSONResponse({"published": count, "seconds": round(took, 3)})


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
    started = asyncio.get_running_loop().time()
    for step in range(1, count + 1):
        await _on_pace(started, step - 1, interval)
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
        # Every socket written at once, as a broadcast server would (awaiting each
        # send in turn would make the baseline slower than what it measures).
        await asyncio.gather(*(ws.send_text(text) for ws in list(_raw_subscribers)))
    took = asyncio.get_running_loop().time() - started
    return JSONResponse(
        {"published": count, "subscribers": len(_raw_subscribers), "seconds": round(took, 3)}
    )


routes = [
    Route("/bench/publish", publish, methods=["POST"]),
    WebSocketRoute("/bench/raw/ws", raw_ws),
    Route("/bench/raw/broadcast", raw_broadcast, methods=["POST"]),
]
