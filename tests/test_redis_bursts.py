"""Bursts never exhaust a Redis pool (runtime/redis_clients.py): hundreds of
commands at once wait for a connection instead of failing with "Too many
connections", so no replay read fails and no coherence write is lost, in process
and on a real server with 500 subscribers connecting at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
from websockets.asyncio.client import ClientConnection

from runtime.coherence_redis import RedisCoherence
from runtime.events.redis_bus import RedisEventBus
from runtime.events.session_keys import session_keys
from runtime.redis_clients import POOL_SIZE
from tests.conftest import new_id
from tests.live import post, raw_ws
from tests.processes import ServerProcess
from tests.waiting import until

BURST = 500
POOL_ERRORS = ("Too many connections", "MaxConnectionsError", "No connection available")


async def test_a_burst_of_commands_waits_for_connections(redis_url: str) -> None:
    assert BURST > POOL_SIZE * 2
    coherence = RedisCoherence(redis_url)
    bus = RedisEventBus(redis_url, queue_limit=100, replay_limit=100)
    sessions = [uuid.uuid4() for _ in range(BURST)]
    try:
        # Every write lands (a lost one would log and leave the key unset).
        await asyncio.gather(*(coherence.written(s, 7) for s in sessions))
        current = await asyncio.gather(*(coherence.is_current(s, 7) for s in sessions))
        assert all(current)
        assert not any(await asyncio.gather(*(coherence.is_current(s, 6) for s in sessions)))
        # Replay reads of the log (the subscribe path's) all answer.
        reads = await asyncio.gather(*(bus.read_log(s, 0) for s in sessions))
        assert all(read.complete and read.events == [] for read in reads)
    finally:
        await asyncio.gather(*(coherence.deleted(s) for s in sessions))
        await coherence.aclose()
        await bus.stop()


RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }"
EVENTS = """subscription($id: ID!, $after: String!) {
  sessionEvents(sessionId: $id, after: $after) { cursor type }
}"""


async def subscribe(
    server: ServerProcess, session_id: str, after: int
) -> tuple[ClientConnection, Any]:
    """One graphql-transport-ws connection resuming the session's events after
    `after` (a replay read), and its first result."""
    ws = await raw_ws(server)
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": EVENTS, "variables": {"id": session_id, "after": str(after)}},
            }
        )
    )
    return ws, json.loads(await ws.recv())


async def test_500_subscribers_at_once_leave_no_pool_error(
    server: ServerProcess, live_env: dict[str, str]
) -> None:
    import redis.asyncio as redis

    sessions = [new_id() for _ in range(BURST // 2)]
    client = redis.Redis.from_url(live_env["CONFAB_EVENT_BUS"])
    heads: dict[str, int] = {}
    for session_id in sessions:
        await post(server, "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
        await post(server, RENAME, id=session_id, t="before the burst")
    for session_id in sessions:  # published in the background: wait for each
        stream = session_keys(uuid.UUID(session_id), cluster=False).stream

        async def renamed(stream: str = stream) -> dict[str, Any] | None:
            entries = await client.xrevrange(stream, count=1)
            fields: Any = entries[0][1] if entries else {b"e": "{}"}
            newest: dict[str, Any] = json.loads(fields[b"e"])
            return newest if newest.get("type") == "title_changed" else None

        await until(renamed, f"the rename of {session_id} in its log")
        newest = await renamed()
        assert newest is not None
        heads[session_id] = int(newest["id"])

    async def rename(session_id: str) -> None:
        await post(server, RENAME, id=session_id, t="renamed in the burst")

    # Two subscribers per session connect at once, each resuming from just before
    # the session's last event (a replay read), while every session is renamed
    # again (a coherence write each).
    subscribers = [(s, heads[s] - 1) for s in sessions for _ in range(2)]
    async with asyncio.timeout(60):  # a subscription whose replay read failed may never answer
        connections = await asyncio.gather(
            *(subscribe(server, s, after) for s, after in subscribers)
        )
    await asyncio.gather(*(rename(s) for s in sessions))
    try:
        for (session_id, _), (_, first) in zip(subscribers, connections, strict=True):
            assert first["type"] == "next", first
            assert first["payload"].get("data"), first
            event = first["payload"]["data"]["sessionEvents"]
            # A failed replay read would have answered resync_required.
            assert event == {"cursor": str(heads[session_id]), "type": "title_changed"}
    finally:
        await asyncio.gather(*(ws.close() for ws, _ in connections))

    log = server.log()
    for error in POOL_ERRORS:
        assert error not in log
    assert "could not record session" not in log
    # Every session's version in Redis is the database's.
    database = await asyncpg.connect(live_env["DATABASE_URL"])
    try:
        for session_id in sessions:
            stored = await database.fetchval(
                "SELECT version FROM sessions WHERE id = $1", uuid.UUID(session_id)
            )
            assert int(await client.get(f"confab:ver:{session_id}") or 0) == stored
    finally:
        await database.close()
        await client.aclose()


async def test_batched_checks_all_answer_when_redis_is_unreachable() -> None:
    """Checks asked together share one MGET; when it fails, every one of them answers
    "not current" (reload from the database) at once, none is left waiting."""
    from tests.processes import free_port

    coherence = RedisCoherence(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    try:
        async with asyncio.timeout(30):
            answers = await asyncio.gather(
                *(coherence.is_current(uuid.uuid4(), 1) for _ in range(BURST))
            )
        assert answers == [False] * BURST
    finally:
        await coherence.aclose()
