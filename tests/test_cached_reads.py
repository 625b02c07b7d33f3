"""Recent messages served from the tail kept beside a cached session
(runtime/sessions.py): always exactly what the database holds, on SQLite and
PostgreSQL, however the windows and the writes interleave; and no pool reset
round trip after a query (runtime/database_url.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette

from runtime.records import Role
from runtime.store import NewMessage
from settings import Settings
from tests.conftest import GraphQLClient, new_id, serving

CREATE_SESSION = "mutation($id: ID!) { createSession(id: $id) { id } }"
# The session's own window: served from the tail.
RECENT = """
query($id: ID!, $last: Int) {
  session(id: $id) {
    messages(last: $last) { nodes { id seq content } pageInfo { hasPreviousPage hasNextPage } }
  }
}"""
# The same window by thread id: always read from the store.
STORED = """
query($t: ID!, $last: Int) {
  messages(threadId: $t, last: $last) {
    nodes { id seq content } pageInfo { hasPreviousPage hasNextPage }
  }
}"""
WINDOWS = (1, 20, 49, 50, 51, 120, 200)


async def append(app: Starlette, session_id: str, thread_id: str, **fields: Any) -> None:
    """A message through the runtime's one write path (as a turn stores one)."""
    runtime = app.state.runtime
    session = await runtime.sessions.get(uuid.UUID(session_id))
    message = NewMessage(session_id=uuid.UUID(session_id), thread_id=uuid.UUID(thread_id), **fields)
    await runtime.conversations.append(session, message)


async def recent_and_stored(gql: GraphQLClient, session_id: str, last: int) -> tuple[Any, Any]:
    recent = (await gql.data(RECENT, id=session_id, last=last))["session"]["messages"]
    stored = (await gql.data(STORED, t=session_id, last=last))["messages"]
    return recent, stored


async def test_recent_windows_are_what_the_store_holds(
    app: Starlette, client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    other = new_id()
    await gql.data(
        "mutation($s: ID!, $id: ID) { createThread(sessionId: $s, id: $id) { id } }",
        s=session_id,
        id=other,
    )
    headers = {"X-Session-Id": session_id}
    written = 0
    for batch in (1, 3, 45, 1, 1, 30, 70):
        for _ in range(batch):
            # A system message over REST (appends to the primary thread, then adds a
            # system event: two writes), and now and then one in another thread.
            sent = await client.post(
                "/api/system", headers=headers, params={"message": f"m{written}"}
            )
            assert sent.status_code == 200, sent.text
            written += 1
            if written % 7 == 0:
                await append(app, session_id, other, role=Role.USER, content="elsewhere")
        for last in WINDOWS:
            recent, stored = await recent_and_stored(gql, session_id, last)
            assert recent == stored, (written, last)
            assert len(recent["nodes"]) == min(last, written)
        # The legacy snapshot's window (CONFAB_REST_HISTORY_LIMIT, 200) too.
        state = (await client.get("/api/state", headers=headers)).json()
        assert [m["content"] for m in state["messages"]] == [
            f"m{n}" for n in range(max(0, written - 200), written)
        ]


async def test_a_small_message_cache_still_reads_right(settings: Settings) -> None:
    # Tails that do not fit (or are pushed out) are read from the store each time.
    async with serving(settings.with_overrides(message_cache_size=60)) as (app, client):
        gql = GraphQLClient(client)
        sessions = [new_id() for _ in range(3)]
        for n in range(30):
            for session_id in sessions:
                if n == 0:
                    await gql.data(CREATE_SESSION, id=session_id)
                await client.post(
                    "/api/system",
                    headers={"X-Session-Id": session_id},
                    params={"message": f"{session_id[:4]} {n}"},
                )
                for last in (5, 50):
                    recent, stored = await recent_and_stored(gql, session_id, last)
                    assert recent == stored
        health = app.state.runtime.sessions.health()
        assert health["cached_messages"] <= 60


async def test_pooled_connections_are_not_reset_after_each_query(postgres_url: str) -> None:
    """asyncpg's default reset (`SELECT pg_advisory_unlock_all(); CLOSE ALL; ...`)
    would be each idle connection's last statement; with none, the last one is ours."""
    name = f"confab-pool-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=f"{postgres_url}?application_name={name}", auto_migrate=True)
    async with serving(settings) as (_, client):
        gql = GraphQLClient(client)
        for _ in range(5):
            await gql.data(CREATE_SESSION, id=new_id())
        admin = await asyncpg.connect(postgres_url)
        try:
            rows = await admin.fetch(
                "SELECT query FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'",
                name,
            )
        finally:
            await admin.close()
    last_statements = [row["query"] for row in rows]
    assert last_statements, "the pool's connections are idle in pg_stat_activity"
    for statement in last_statements:
        assert "pg_advisory_unlock_all" not in statement
        assert "RESET ALL" not in statement


async def test_a_kept_message_reads_as_the_database_returns_it(
    app: Starlette, gql: GraphQLClient
) -> None:
    """jsonb orders an object's keys its own way (shorter first): the message kept in
    the tail after its append must read exactly as a query of the database does."""
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    results = [{"expression": "6*7", "value": 42, "nested": {"longer": 1, "k": 2}}]
    await append(app, session_id, session_id, role=Role.TOOL, content="42", tool_results=results)
    query = "query($id: ID!) { session(id: $id) { messages(last: 5) { nodes { toolResults } } } }"
    by_thread = "query($t: ID!) { messages(threadId: $t, last: 5) { nodes { toolResults } } }"
    recent = (await gql.raw(query, id=session_id))["data"]["session"]["messages"]
    stored = (await gql.raw(by_thread, t=session_id))["data"]["messages"]
    assert json.dumps(recent) == json.dumps(stored)  # the same keys in the same order
