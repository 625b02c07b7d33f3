"""Memory per idle subscriber: `subscribers` WebSocket connections, each holding one
`toolUpdate` subscription (100 per session), open on one server process and idle.
The figure is the growth of the server's resident memory divided by their number."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from bench.common import BenchServer
from bench.fanout import graphql_subscriber, wait_for_subscribers
from bench.wsclient import Connection, Received, open_many

PER_SESSION = 100
TARGET_KIB = 50.0


async def subscriber_count(http: httpx.AsyncClient) -> int:
    return int((await http.get("/readyz")).json()["events"]["subscribers"])


async def unsubscribe(http: httpx.AsyncClient, connections: list[Connection], before: int) -> None:
    for connection in connections:
        connection.close()
    for _ in range(600):  # all gone before what comes next
        if await subscriber_count(http) <= before:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("closed subscribers are still registered")


async def measure(server: BenchServer, subscribers: int) -> dict[str, Any]:
    sessions = [str(uuid.uuid4()) for _ in range(-(-subscribers // PER_SESSION))]
    async with httpx.AsyncClient(
        base_url=server.url, headers={"AOMI-APP-KEY": server.key}, timeout=30
    ) as http:
        for session_id in sessions:
            response = await http.post("/api/sessions", headers={"X-Session-Id": session_id})
            response.raise_for_status()
        before = await subscriber_count(http)
        received: Received = []

        async def subscribe(count: int) -> list[Connection]:
            connections = await open_many(
                count,
                lambda n: graphql_subscriber(
                    server.url, server.key, sessions[n // PER_SESSION], received
                ),
            )
            await wait_for_subscribers(server.url, before + count)
            return connections

        # Warm up first (imports, caches, pools), so only subscribers are counted.
        await unsubscribe(http, await subscribe(min(subscribers, 200)), before)
        await asyncio.sleep(0.5)
        rss_before = server.rss_kib()
        connections = await subscribe(subscribers)
        await asyncio.sleep(1)  # settle: every handshake's buffers released
        rss_after = server.rss_kib()
        await unsubscribe(http, connections, before)
    return {
        "subscribers": subscribers,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "kib_per_subscriber": round((rss_after - rss_before) / subscribers, 1),
        "target_kib": TARGET_KIB,
    }
