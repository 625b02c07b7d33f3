"""Subscription fan-out: many WebSocket subscribers of one session receiving
`tool_update` events, against a raw Starlette WebSocket broadcast of the same bytes.

Workload, per side:
- burst: `events` published back to back; delivered messages per second is
  subscribers x events over the time from the trigger to the last arrival.
- paced: `events` published on a fixed schedule `interval_ms` apart, twice;
  publish-to-receive latency is each arrival's wall clock minus the event's `ts`.
The raw side sends every socket at once from its own process; graphql-ws on Node
(bench/node/fanout-peer.mjs) serves the same subscription as a peer. Confab's subscribers
hold `toolUpdate(sessionId)` over graphql-transport-ws on the first replica, all
with the same selection set; its events are published by the second replica (a
process of its own, not slowed by the fan-out) through the announcer and the bus
(Redis pub/sub). Cross-replica: paced runs published by the subscribers' own server
and by the second, alternately, twice each; the p50 difference is what crossing
replicas adds. Sustained rate: paced runs from the second replica at 20, 40, 80, ...
events per second until the p99 exceeds its target.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import percentiles
from bench.peer_servers import fanout_peer
from bench.wsclient import Connection, Received, connect, open_many

TOOL_UPDATES = "subscription($s: ID!) { toolUpdate(sessionId: $s) { cursor toolName result ts } }"
SUBSCRIBE_TIMEOUT = 120.0
TARGET_RATIO = 0.9
TARGET_P99_MS = 50.0
TARGET_P99_OVER_RAW = 2.0
TARGET_OVER_GRAPHQL_WS = 2.0
# Paced publishing rates tried, events per second, until the p99 target is missed.
RATES = (20, 40, 80, 160, 320)
TARGET_CROSS_REPLICA_ADDED_P50_MS = 2.0


async def graphql_subscriber(url: str, key: str, session_id: str, received: Received) -> Connection:
    parts = urlsplit(url)
    connection = await connect(
        parts.hostname or "127.0.0.1",
        parts.port or 80,
        "/graphql",
        received,
        subprotocol="graphql-transport-ws",
    )
    ack = await connection.reply({"type": "connection_init", "payload": {"appKey": key}})
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"connection refused: {ack}")
    connection.send_json(
        {
            "type": "subscribe",
            "id": "1",
            "payload": {"query": TOOL_UPDATES, "variables": {"s": session_id}},
        }
    )
    return connection


async def raw_subscriber(url: str, received: Received) -> Connection:
    parts = urlsplit(url)
    return await connect(parts.hostname or "127.0.0.1", parts.port or 80, "/bench/raw/ws", received)


async def wait_for_subscribers(url: str, count: int) -> None:
    """Until the server counts `count` live subscriptions (none may miss an event)."""
    deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while time.monotonic() < deadline:
            if (await http.get("/readyz")).json()["events"]["subscribers"] >= count:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{count} subscribers never registered")


async def deliver(
    trigger_url: str, received: Received, expected: int, stall: float = 10
) -> tuple[float, list[float]]:
    """Trigger publishing and wait for every arrival: messages per second and each
    arrival's publish-to-receive latency (ms)."""
    received.clear()
    started = time.time()
    async with httpx.AsyncClient(timeout=120) as http:
        response = await http.post(trigger_url)
        response.raise_for_status()
    seen, last_progress = 0, time.monotonic()
    while len(received) < expected and time.monotonic() - last_progress < stall:
        await asyncio.sleep(0.005)
        if len(received) > seen:
            seen, last_progress = len(received), time.monotonic()
    if len(received) < expected:
        raise RuntimeError(f"only {len(received)} of {expected} messages arrived")
    latencies = []
    for arrived, payload in received:
        event = json.loads(payload)["payload"]["data"]["toolUpdate"]
        latencies.append((arrived - datetime.fromisoformat(event["ts"]).timestamp()) * 1000)
    return len(received) / (received[-1][0] - started), latencies


async def side(
    urls: tuple[str, str], received: Received, expected: int, rounds: int
) -> dict[str, Any]:
    """One side's burst rate and paced latency (`rounds` paced runs, pooled)."""
    burst, paced = urls
    rate, _ = await deliver(burst, received, expected)
    latencies: list[float] = []
    for _ in range(rounds):
        latencies += (await deliver(paced, received, expected))[1]
    return {"burst_messages_per_s": round(rate), "paced_latency": percentiles(latencies)}


async def sustained_rate(
    publisher_url: str, received: Received, subscribers: int, events: int
) -> dict[str, Any]:
    """Paced runs from the publisher's own process at rising rates: the highest rate
    whose publish-to-receive p99 stays within the target, with every rate's figures."""
    rates: list[dict[str, Any]] = []
    best = 0.0
    for per_second in RATES:
        interval_ms = 1000 / per_second
        _, latencies = await deliver(
            f"{publisher_url}&count={events}&interval_ms={interval_ms}",
            received,
            subscribers * events,
        )
        figures = percentiles(latencies)
        rates.append({"events_per_s": per_second, **figures})
        if figures["p99_ms"] > TARGET_P99_MS:
            break
        best = per_second
    return {"events_per_s": best, "rates": rates}


async def measure(
    url: str, replica_url: str, key: str, subscribers: int, events: int, interval_ms: float
) -> dict[str, Any]:
    """Subscribers on `url`; Confab's events published by `replica_url`, a process of
    its own (another replica), at a fixed pace."""
    expected = subscribers * events
    burst = f"count={events}"
    paced = f"count={events}&interval_ms={interval_ms}"

    received: Received = []
    raw_connections = await open_many(subscribers, lambda _: raw_subscriber(url, received))
    raw_urls = (f"{url}/bench/raw/broadcast?{burst}", f"{url}/bench/raw/broadcast?{paced}")
    raw = await side(raw_urls, received, expected, rounds=2)
    for connection in raw_connections:
        connection.close()

    with fanout_peer() as node:
        node_connections = await open_many(
            subscribers, lambda _: graphql_subscriber(node.url, key, "bench", received)
        )
        await wait_for_subscribers(node.url, subscribers)
        trigger = f"{node.url}/broadcast"
        graphql_ws = await side(
            (f"{trigger}?{burst}", f"{trigger}?{paced}"), received, expected, rounds=2
        )
        for connection in node_connections:
            connection.close()

    async with httpx.AsyncClient(base_url=url, headers={"AOMI-APP-KEY": key}) as http:
        session_id = str(uuid.uuid4())
        (await http.post("/api/sessions", headers={"X-Session-Id": session_id})).raise_for_status()
        before = (await http.get("/readyz")).json()["events"]["subscribers"]
    connections = await open_many(
        subscribers, lambda _: graphql_subscriber(url, key, session_id, received)
    )
    await wait_for_subscribers(url, before + subscribers)
    publish = f"/bench/publish?session={session_id}"
    confab = await side(
        (f"{replica_url}{publish}&{burst}", f"{replica_url}{publish}&{paced}"),
        received,
        expected,
        rounds=2,
    )
    # Publisher on the subscribers' replica, then on the other, alternating: the
    # machine's drift falls on both alike.
    local: list[float] = []
    remote: list[float] = []
    for _ in range(2):
        local += (await deliver(f"{url}{publish}&{paced}", received, expected))[1]
        remote += (await deliver(f"{replica_url}{publish}&{paced}", received, expected))[1]
    sustained = await sustained_rate(f"{replica_url}{publish}", received, subscribers, events)
    for connection in connections:
        connection.close()

    workload = {"subscribers": subscribers, "events": events, "interval_ms": interval_ms}
    in_process, cross_replica = percentiles(local), percentiles(remote)
    raw_p99 = raw["paced_latency"]["p99_ms"]
    return {
        "fanout": {
            "workload": workload,
            "raw": raw,
            "confab": confab,
            "graphql_ws_node": graphql_ws,
            "ratio": round(confab["burst_messages_per_s"] / raw["burst_messages_per_s"], 2),
            "target_ratio": TARGET_RATIO,
            "over_graphql_ws": round(
                confab["burst_messages_per_s"] / graphql_ws["burst_messages_per_s"], 2
            ),
            "target_over_graphql_ws": TARGET_OVER_GRAPHQL_WS,
            "target_p99_ms": TARGET_P99_MS,
            "p99_over_raw": round(confab["paced_latency"]["p99_ms"] / raw_p99, 2),
            "target_p99_over_raw": TARGET_P99_OVER_RAW,
            "sustained": sustained,
        },
        "cross_replica": {
            "workload": workload,
            "in_process": in_process,
            "cross_replica": cross_replica,
            "added_p50_ms": round(cross_replica["p50_ms"] - in_process["p50_ms"], 3),
            "target_added_p50_ms": TARGET_CROSS_REPLICA_ADDED_P50_MS,
        },
    }
