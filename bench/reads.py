"""Read scenarios: a snapshot over GraphQL and REST against the raw baseline, a long
history, and a wallet's session list.

- snapshot: GraphQL `session { title isProcessing messages(last: 20) }` vs
  `GET /bench/raw/snapshot` (same services, plain JSON). Target ratio >= 0.5.
- rest-state: `GET /api/state` of the same session vs the same raw endpoint.
  Target ratio >= 0.8.
- long-history: `GET /api/state` of a session with 10,000 messages (the last
  page), one request at a time. Target p99 <= 10 ms.
- wallet-list: `GET /api/sessions?public_key=K` with 1,000 sessions bound to K,
  first page, one request at a time. Target p99 <= 10 ms.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import httpx

from bench.common import PG_URL
from bench.loadgen import Request, run

SNAPSHOT = (
    "query($id: ID!) { session(id: $id) { title isProcessing "
    "messages(last: 20) { nodes { id role content createdAt } } } }"
)

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


async def prepare(url: str, history: int, wallet_sessions: int) -> dict[str, str]:
    """A chatty session, a long one, and a wallet with many sessions."""
    chatty, long_one = str(uuid.uuid4()), str(uuid.uuid4())
    wallet = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for n in range(12):  # 24 messages: the last 20 are a full page
            await http.post(
                "/api/chat", headers={"X-Session-Id": chatty}, params={"message": f"question {n}"}
            )
            for _ in range(100):
                state = (await http.get("/api/state", headers={"X-Session-Id": chatty})).json()
                if not state["is_processing"]:
                    break
                await asyncio.sleep(0.02)
        await http.post("/api/sessions", headers={"X-Session-Id": long_one})
    connection = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://"))
    try:
        await connection.execute(_SEED_MESSAGES, uuid.UUID(long_one), history)
        await connection.execute(
            "UPDATE threads SET next_seq = $2 WHERE id = $1", uuid.UUID(long_one), history + 1
        )
        await connection.execute(_SEED_WALLET, wallet, wallet_sessions)
    finally:
        await connection.close()
    return {"chatty": chatty, "long": long_one, "wallet": wallet}


def graphql(query: str, **variables: Any) -> Request:
    body = json.dumps({"query": query, "variables": variables}).encode()
    return Request("POST", "/graphql", {"Content-Type": "application/json"}, body)


def get(path: str, **headers: str) -> Request:
    return Request("GET", path, headers)


async def measure(
    url: str, seconds: float, connections: int, sizes: dict[str, int]
) -> dict[str, Any]:
    ids = await prepare(url, sizes["history"], sizes["wallet_sessions"])
    chatty, long_one = ids["chatty"], ids["long"]

    async def load(request: Request, parallel: int = connections) -> dict[str, float]:
        await run(url, request, parallel, min(1.0, seconds))  # warm caches and pools
        return await run(url, request, parallel, seconds)

    raw = await load(get(f"/bench/raw/snapshot?id={chatty}"))
    snapshot = await load(graphql(SNAPSHOT, id=chatty))
    state = await load(get("/api/state", **{"X-Session-Id": chatty}))
    # Latency targets: one request at a time, so queueing is not measured as latency.
    long_state = await load(get("/api/state", **{"X-Session-Id": long_one}), parallel=1)
    wallet = await load(get(f"/api/sessions?public_key={ids['wallet']}"), parallel=1)
    return {
        "raw_snapshot": raw,
        "snapshot": {
            **snapshot,
            "ratio": round(snapshot["requests_per_s"] / raw["requests_per_s"], 2),
            "target_ratio": 0.5,
        },
        "rest_state": {
            **state,
            "ratio": round(state["requests_per_s"] / raw["requests_per_s"], 2),
            "target_ratio": 0.8,
        },
        "long_history": {**long_state, "messages": sizes["history"], "target_p99_ms": 10},
        "wallet_list": {**wallet, "sessions": sizes["wallet_sessions"], "target_p99_ms": 10},
    }
