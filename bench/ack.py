"""Acknowledgement time of a chat message, GraphQL `sendMessage` and REST
`POST /api/chat`: request to response, sessions already cached, PostgreSQL + Redis,
one server process. The two dialects run one after the other on the same server.

Workload: N concurrent chat users (one session each), each a live UI: it holds a
WebSocket subscription to its session's `processing_changed` events, sends a
message, waits for the assistant to finish, thinks for a moment (uniform between
0.5x and 1.5x `--think`), and sends again. The acknowledgement is the send's HTTP
round trip only. Right before each send the user also times `GET /healthz` (no
work at all): the floor this machine and load generator impose, side by side.

    python -m bench.ack [--sessions 50] [--messages 10] [--think 2] [--dialects graphql,rest]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from bench.common import percentiles, server, write_result

SEND = (
    "mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id isProcessing } }"
)
WATCH = (
    'subscription($s: ID!) { sessionEvents(sessionId: $s, types: ["processing_changed"]) { data } }'
)
TARGET_P99_MS = 10.0


async def graphql(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = (
        await http.post("/graphql", json={"query": query, "variables": variables})
    ).json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]  # type: ignore[no-any-return]


async def send_graphql(http: httpx.AsyncClient, session_id: str, content: str) -> None:
    await graphql(http, SEND, s=session_id, c=content)


async def send_rest(http: httpx.AsyncClient, session_id: str, content: str) -> None:
    response = await http.post(
        "/api/chat", headers={"X-Session-Id": session_id}, json={"message": content}
    )
    response.raise_for_status()


SENDERS: dict[str, Callable[[httpx.AsyncClient, str, str], Awaitable[None]]] = {
    "graphql": send_graphql,
    "rest": send_rest,
}


async def user(
    http: httpx.AsyncClient,
    ws_url: str,
    key: str,
    send: Callable[[httpx.AsyncClient, str, str], Awaitable[None]],
    messages: int,
    think: float,
    acks: list[float],
    floor: list[float],
) -> None:
    session_id = str(uuid.uuid4())
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

        for n in range(messages + 1):  # the first message creates and caches the session
            if n:
                await asyncio.sleep(random.uniform(0.5, 1.5) * think)
                started = time.perf_counter()
                await http.get("/healthz")
                floor.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await send(http, session_id, f"question {n}: what is new today?")
            if n:
                acks.append((time.perf_counter() - started) * 1000)
            await turn_done()


async def measure(
    url: str, key: str, dialect: str, sessions: int, messages: int, think: float
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=2 * sessions, max_keepalive_connections=2 * sessions)
    async with httpx.AsyncClient(
        base_url=url, headers={"AOMI-APP-KEY": key}, limits=limits, timeout=30
    ) as http:
        acks: list[float] = []
        floor: list[float] = []
        ws_url = url.replace("http://", "ws://") + "/graphql"
        started = time.perf_counter()
        await asyncio.gather(
            *(
                user(http, ws_url, key, SENDERS[dialect], messages, think, acks, floor)
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
