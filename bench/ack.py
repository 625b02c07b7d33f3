"""Acknowledgement time of `sendMessage`: request to response, sessions already
cached, PostgreSQL + Redis, one server process.

Workload: N concurrent chat users (one session each), each a live UI: it holds a
WebSocket subscription to its session's `processing_changed` events, sends a
message, waits for the assistant to finish, thinks for a moment (uniform between
0.5x and 1.5x `--think`), and sends again. The acknowledgement is the send's HTTP
round trip only. Right before each send the user also times `GET /healthz` (no
work at all): the floor this machine and load generator impose, side by side.

    python -m bench.ack [--sessions 50] [--messages 10] [--think 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
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


async def user(
    http: httpx.AsyncClient,
    ws_url: str,
    key: str,
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
            await graphql(http, SEND, s=session_id, c=f"question {n}: what is new today?")
            if n:
                acks.append((time.perf_counter() - started) * 1000)
            await turn_done()


async def measure(url: str, key: str, sessions: int, messages: int, think: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=2 * sessions, max_keepalive_connections=2 * sessions)
    async with httpx.AsyncClient(
        base_url=url, headers={"AOMI-APP-KEY": key}, limits=limits, timeout=30
    ) as http:
        acks: list[float] = []
        floor: list[float] = []
        ws_url = url.replace("http://", "ws://") + "/graphql"
        started = time.perf_counter()
        await asyncio.gather(
            *(user(http, ws_url, key, messages, think, acks, floor) for _ in range(sessions))
        )
        wall = time.perf_counter() - started
    return {
        **percentiles(acks),
        "messages_per_s": round(len(acks) / wall, 1),
        "healthz_floor": percentiles(floor),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--think", type=float, default=2.0, help="mean think time (s)")
    args = parser.parse_args()
    with server() as (url, key):
        result = asyncio.run(measure(url, key, args.sessions, args.messages, args.think))
    print(
        f"sendMessage acknowledgement: {args.sessions} concurrent users, {args.messages} "
        f"messages each, ~{args.think}s think time (PostgreSQL + Redis, cached sessions)"
    )
    floor = result["healthz_floor"]
    print(
        f"  sendMessage  p50 {result['p50_ms']} ms   p90 {result['p90_ms']} ms   "
        f"p99 {result['p99_ms']} ms   (target p99 <= {TARGET_P99_MS} ms)   "
        f"{result['messages_per_s']} messages/s"
    )
    print(
        f"  GET /healthz p50 {floor['p50_ms']} ms   p90 {floor['p90_ms']} ms   "
        f"p99 {floor['p99_ms']} ms   (the floor, same run)"
    )
    path = write_result("ack", {"scenario": "sendMessage ack", "params": vars(args), **result})
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
