"""Acknowledgement time of a chat message, GraphQL `sendMessage` and REST
`POST /api/chat`: request to response, sessions already cached, PostgreSQL + Redis,
one server process. The two dialects run one after the other on the same server.

Workload: N concurrent chat users (one session each), each a live UI: it holds a
WebSocket subscription to its session's `processing_changed` events, sends a
message, waits for the assistant to finish, thinks for a moment (uniform between
0.5x and 1.5x `--think`), and sends again. The acknowledgement is the send's HTTP
round trip only. Right before each send the user also times `GET /healthz` (no
work at all): the floor this machine and load generator impose, side by side.
Requests go over one keep-alive connection per user with the suite's own minimal
HTTP client (`bench.loadgen`), so the measuring side adds as little as it can.

    python -m bench.ack [--sessions 50] [--messages 10] [--think 2] [--dialects graphql,rest]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import websockets
from websockets.typing import Subprotocol

from bench.common import percentiles, server, write_result
from bench.loadgen import HttpConnection, Request

SEND = (
    "mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id isProcessing } }"
)
WATCH = (
    'subscription($s: ID!) { sessionEvents(sessionId: $s, types: ["processing_changed"]) { data } }'
)
# Each user's session is bound to a wallet, so with the bench app's wallet memory on
# every answered turn also writes a memory (in the background, after the answer).
CREATE = "mutation($s: ID!, $k: String) { createSession(id: $s, publicKey: $k) { id } }"
TARGET_P99_MS = 10.0


def _post(path: str, key: str, body: object, **headers: str) -> Request:
    return Request(
        "POST",
        path,
        {"AOMI-APP-KEY": key, "Content-Type": "application/json", **headers},
        json.dumps(body).encode(),
    )


def send_graphql(key: str, session_id: str, content: str) -> Request:
    return _post("/graphql", key, {"query": SEND, "variables": {"s": session_id, "c": content}})


def send_rest(key: str, session_id: str, content: str) -> Request:
    return _post("/api/chat", key, {"message": content}, **{"X-Session-Id": session_id})


SENDERS: dict[str, Callable[[str, str, str], Request]] = {
    "graphql": send_graphql,
    "rest": send_rest,
}
HEALTHZ = Request("GET", "/healthz", {})


async def timed(http: HttpConnection, request: Request) -> float:
    """The round trip in ms; a failure (HTTP or GraphQL error) ends the run."""
    payload = http.encode(request)
    started = time.perf_counter()
    status, body = await http.send(payload)
    elapsed = (time.perf_counter() - started) * 1000
    if status >= 400 or b'"errors"' in body:
        raise RuntimeError(f"{request.method} {request.path}: HTTP {status} {body[:300]!r}")
    return elapsed


async def user(
    url: str,
    ws_url: str,
    key: str,
    send: Callable[[str, str, str], Request],
    messages: int,
    think: float,
    acks: list[float],
    floor: list[float],
) -> None:
    session_id = str(uuid.uuid4())
    http = await HttpConnection.open(url)
    wallet = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    await timed(
        http, _post("/graphql", key, {"query": CREATE, "variables": {"s": session_id, "k": wallet}})
    )
    async with websockets.connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"appKey": key}}))
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": "1",
                    "payload": {"query": WATCH, "variables": {"s": session_id}},
                }
            )
        )

        async def turn_done() -> None:
            while True:
                message = json.loads(await ws.recv())
                if (
                    message.get("type") == "next"
                    and not message["payload"]["data"]["sessionEvents"]["data"]["is_processing"]
                ):
                    return

        for n in range(messages + 1):  # the first message caches the session
            if n:
                await asyncio.sleep(random.uniform(0.5, 1.5) * think)
                floor.append(await timed(http, HEALTHZ))
            ack = await timed(http, send(key, session_id, f"question {n}: what is new today?"))
            if n:
                acks.append(ack)
            await turn_done()
    http.close()


async def measure(
    url: str, key: str, dialect: str, sessions: int, messages: int, think: float
) -> dict[str, Any]:
    acks: list[float] = []
    floor: list[float] = []
    ws_url = url.replace("http://", "ws://") + "/graphql"
    started = time.perf_counter()
    await asyncio.gather(
        *(
            user(url, ws_url, key, SENDERS[dialect], messages, think, acks, floor)
            for _ in range(sessions)
        )
    )
    wall = time.perf_counter() - started
    return {
        "dialect": dialect,
        **percentiles(acks),
        "messages_per_s": round(len(acks) / wall, 1),
        "healthz_floor": percentiles(floor),
    }


def report(result: dict[str, Any]) -> None:
    name = {"graphql": "sendMessage", "rest": "POST /api/chat"}[result["dialect"]]
    floor = result["healthz_floor"]
    print(
        f"  {name:<15} p50 {result['p50_ms']} ms   p90 {result['p90_ms']} ms   "
        f"p99 {result['p99_ms']} ms   (target p99 <= {TARGET_P99_MS} ms)   "
        f"{result['messages_per_s']} messages/s"
    )
    print(
        f"  {'GET /healthz':<15} p50 {floor['p50_ms']} ms   p90 {floor['p90_ms']} ms   "
        f"p99 {floor['p99_ms']} ms   (the floor, same run)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--think", type=float, default=2.0, help="mean think time (s)")
    parser.add_argument("--dialects", default="graphql,rest")
    args = parser.parse_args()
    results = {}
    with server() as started:
        for dialect in args.dialects.split(","):
            results[dialect] = asyncio.run(
                measure(started.url, started.key, dialect, args.sessions, args.messages, args.think)
            )
    print(
        f"chat acknowledgement: {args.sessions} concurrent users, {args.messages} "
        f"messages each, ~{args.think}s think time (PostgreSQL + Redis, cached sessions)"
    )
    for result in results.values():
        report(result)
    path = write_result("ack", {"scenario": "chat ack", "params": vars(args), **results})
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
