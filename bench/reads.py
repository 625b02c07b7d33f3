"""Read scenarios: a session snapshot on Confab and on the servers users would pick
instead, side by side in interleaved slices (bench/slices.py), then a long history
and a wallet's session list.

- snapshot: GraphQL `session { title isProcessing messages(last: 20) }` on Confab
  (PostgreSQL + Redis, and the embedded SQLite default), `GET /api/state` of the
  same session, Confab's raw baseline endpoint on its real storage
  (`/bench/raw/snapshot`), and the same snapshot served from memory by a raw
  Starlette endpoint, stock Strawberry, graphql-yoga and Apollo Server
  (bench/peer_servers.py). Targets: Confab GraphQL >= 1.0x the best Node peer and
  >= 2x stock Strawberry; REST >= 1.5x the best Node peer; SQLite >= 0.9x
  PostgreSQL for both.
- long-history: `GET /api/state` of a session with 10,000 messages (the last
  page), one request at a time. Target p99 <= 10 ms.
- wallet-list: `GET /api/sessions?public_key=K` with 1,000 sessions bound to K,
  first page, one request at a time. Target p99 <= 10 ms.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import PG_URL, BenchServer
from bench.loadgen import Request, run
from bench.peer_servers import NODE_PEERS, peer
from bench.slices import Side, interleaved, ratio

SNAPSHOT = (
    "query($id: ID!) { session(id: $id) { title isProcessing "
    "messages(last: 20) { nodes { id role content createdAt } } } }"
)
TARGETS = {
    "graphql_over_best_node": 1.0,
    "graphql_over_strawberry": 2.0,
    "rest_over_best_node": 1.5,
    "lone_graphql_over_best_node": 1.0,
    "lone_rest_over_best_node": 1.5,
    "sqlite_graphql_over_postgres": 0.9,
    "sqlite_rest_over_postgres": 0.9,
}

_SEED_MESSAGES = """
INSERT INTO messages (id, session_id, thread_id, seq, role, content, is_interrupted, created_at)
SELECT gen_random_uuid(), $1, $1, g, CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END,
       'message number ' || g, false, now()
FROM generate_series(1, $2) AS g
"""
_SEED_WALLET = """
WITH created AS (
    INSERT INTO sessions (id, app_id, title_source, public_key, state, metadata, is_archived,
                          is_processing, version, events_read_upto, created_at, updated_at,
                          last_active_at)
    SELECT gen_random_uuid(), 'default', 'default', $1, '{}', '{}', false, false, 1, 0,
           now(), now(), now() - make_interval(secs => g)
    FROM generate_series(1, $2) AS g
    RETURNING id
)
INSERT INTO threads (id, session_id, is_primary, next_seq, created_at, updated_at)
SELECT id, id, true, 1, now(), now() FROM created
"""


async def chatty_session(url: str) -> str:
    """A session with 24 messages (12 questions answered): the last 20 are a full page."""
    chatty = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for n in range(12):
            await http.post(
                "/api/chat", headers={"X-Session-Id": chatty}, params={"message": f"question {n}"}
            )
            for _ in range(100):
                state = (await http.get("/api/state", headers={"X-Session-Id": chatty})).json()
                if not state["is_processing"]:
                    break
                await asyncio.sleep(0.02)
    return chatty


async def prepare(url: str, history: int, wallet_sessions: int) -> dict[str, str]:
    """A chatty session, a long one, and a wallet with many sessions."""
    chatty, long_one = await chatty_session(url), str(uuid.uuid4())
    wallet = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await http.post("/api/sessions", headers={"X-Session-Id": long_one})
    await seed_history(long_one, history)
    connection = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://"))
    try:
        await connection.execute(_SEED_WALLET, wallet, wallet_sessions)
    finally:
        await connection.close()
    return {"chatty": chatty, "long": long_one, "wallet": wallet}


async def seed_history(session_id: str, messages: int) -> None:
    """`messages` alternating questions and answers in the session's primary thread,
    written straight into PostgreSQL (the API would take minutes)."""
    connection = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://"))
    try:
        await connection.execute(_SEED_MESSAGES, uuid.UUID(session_id), messages)
        await connection.execute(
            "UPDATE threads SET next_seq = $2 WHERE id = $1", uuid.UUID(session_id), messages + 1
        )
    finally:
        await connection.close()


async def until_alone(url: str, within: float = 30) -> None:
    """Until the lone replica holds its sole lease (it takes one tick, or ten if an
    earlier run's replica is still counted present)."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while "confab_sole_writer 1.0" not in (await http.get("/metrics")).text:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} never became the sole writer on its Redis")
            await asyncio.sleep(0.1)


def graphql(query: str, **variables: Any) -> Request:
    body = json.dumps({"query": query, "variables": variables}).encode()
    return Request("POST", "/graphql", {"Content-Type": "application/json"}, body)


def get(path: str, **headers: str) -> Request:
    return Request("GET", path, headers)


async def measure(
    confab: BenchServer,
    lone: BenchServer,
    embedded: BenchServer,
    seconds: float,
    connections: int,
    rounds: int,
    sizes: dict[str, int],
) -> dict[str, Any]:
    ids = await prepare(confab.url, sizes["history"], sizes["wallet_sessions"])
    chatty, long_one = ids["chatty"], ids["long"]
    embedded_chatty = await chatty_session(embedded.url)
    await until_alone(lone.url)
    async with httpx.AsyncClient(base_url=confab.url, timeout=30) as http:
        answer = await http.post("/graphql", json={"query": SNAPSHOT, "variables": {"id": chatty}})
    snapshot_file = Path(tempfile.mkdtemp()) / "snapshot.json"
    snapshot_file.write_text(json.dumps(answer.json()["data"]["session"]))

    state = "/api/state"
    sides = [
        Side("confab graphql", confab.url, graphql(SNAPSHOT, id=chatty), confab.pid),
        Side("confab rest state", confab.url, get(state, **{"X-Session-Id": chatty}), confab.pid),
        Side("confab raw", confab.url, get(f"/bench/raw/snapshot?id={chatty}"), confab.pid),
        # The same database, a Redis of its own: the only writer there, it answers
        # cached sessions without a Redis check (runtime/coherence_sole.py).
        Side("lone graphql", lone.url, graphql(SNAPSHOT, id=chatty), lone.pid),
        Side("lone rest state", lone.url, get(state, **{"X-Session-Id": chatty}), lone.pid),
        Side("sqlite graphql", embedded.url, graphql(SNAPSHOT, id=embedded_chatty), embedded.pid),
        Side(
            "sqlite rest state",
            embedded.url,
            get(state, **{"X-Session-Id": embedded_chatty}),
            embedded.pid,
        ),
    ]
    with ExitStack() as stack:
        for name in ("raw", "strawberry", *NODE_PEERS):
            started = stack.enter_context(peer(name, snapshot_file))
            request = get(started.path) if name == "raw" else graphql(SNAPSHOT, id=chatty)
            if name != "raw":
                request = Request("POST", started.path, request.headers, request.body)
            sides.append(Side(name, started.url, request, started.pid))
        summary = await interleaved(sides, rounds, seconds, connections)

    best_node = max(NODE_PEERS, key=lambda name: summary[name]["requests_per_s"])
    ratios = {
        "graphql_over_best_node": ratio(summary, "confab graphql", best_node),
        "graphql_over_strawberry": ratio(summary, "confab graphql", "strawberry"),
        "rest_over_best_node": ratio(summary, "confab rest state", best_node),
        "lone_graphql_over_best_node": ratio(summary, "lone graphql", best_node),
        "lone_rest_over_best_node": ratio(summary, "lone rest state", best_node),
        "sqlite_graphql_over_postgres": ratio(summary, "sqlite graphql", "confab graphql"),
        "sqlite_rest_over_postgres": ratio(summary, "sqlite rest state", "confab rest state"),
    }
    for name in summary:
        summary[name]["over_raw"] = ratio(summary, name, "raw")

    async def one_at_a_time(request: Request) -> dict[str, float]:
        # Latency targets: one request at a time, so queueing is not measured as latency.
        await run(confab.url, request, 1, min(1.0, seconds))
        return await run(confab.url, request, 1, seconds)

    long_state = await one_at_a_time(get(state, **{"X-Session-Id": long_one}))
    wallet = await one_at_a_time(get(f"/api/sessions?public_key={ids['wallet']}"))
    return {
        "workload": {"rounds": rounds, "slice_seconds": seconds, "connections": connections},
        "sides": summary,
        "best_node_peer": best_node,
        "ratios": {key: {**value, "target": TARGETS[key]} for key, value in ratios.items()},
        "long_history": {**long_state, "messages": sizes["history"], "target_p99_ms": 10},
        "wallet_list": {**wallet, "sessions": sizes["wallet_sessions"], "target_p99_ms": 10},
    }


async def snapshot_over_raw(
    confab: BenchServer, seconds: float, connections: int, rounds: int
) -> dict[str, Any]:
    """The GraphQL snapshot against Confab's own raw baseline, on one server
    (bench.observability compares it with and without observability)."""
    chatty = await chatty_session(confab.url)
    sides = [
        Side("confab graphql", confab.url, graphql(SNAPSHOT, id=chatty), confab.pid),
        Side("confab raw", confab.url, get(f"/bench/raw/snapshot?id={chatty}"), confab.pid),
    ]
    summary = await interleaved(sides, rounds, seconds, connections)
    return {
        "ratio": ratio(summary, "confab graphql", "confab raw")["ratio"],
        "graphql_requests_per_s": summary["confab graphql"]["requests_per_s"],
        "raw_requests_per_s": summary["confab raw"]["requests_per_s"],
    }
