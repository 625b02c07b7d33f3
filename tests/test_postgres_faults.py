"""PostgreSQL going away and coming back, on a cluster owned by the test: requests
fail fast with 503 / SERVICE_UNAVAILABLE, readyz says so, and everything recovers
by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from server import create_app
from settings import Settings
from tests.conftest import GraphQLClient, new_id, started
from tests.owned_postgres import OwnedPostgres


@pytest.fixture
def owned_postgres() -> Iterator[OwnedPostgres]:
    cluster = OwnedPostgres()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
async def http(owned_postgres: OwnedPostgres) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=owned_postgres.url, auto_migrate=True, db_timeout=2)
    app = create_app(settings)
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_database_down_fails_fast_and_recovers(
    owned_postgres: OwnedPostgres, http: httpx.AsyncClient
) -> None:
    gql = GraphQLClient(http)
    session_id = new_id()
    await gql.data("mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    headers = {"X-Session-Id": session_id}
    assert (await http.get("/api/state", headers=headers)).status_code == 200

    owned_postgres.stop()
    async with asyncio.timeout(60):  # no hangs: each answers without waiting for the database
        rest = await http.post("/api/chat", headers=headers, params={"message": "anyone there?"})
        assert rest.status_code == 503
        assert rest.json() == {"error": "a backing service is unavailable; try again shortly"}
        created = await gql.raw("mutation { createSession { id } }")
        assert created["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"].startswith("unavailable")

    owned_postgres.start()
    for _ in range(50):  # the pool reconnects on its own
        if (await http.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.2)
    assert (await http.get("/readyz")).status_code == 200
    for _ in range(10):
        chat = await http.post("/api/chat", headers=headers, params={"message": "back?"})
        if chat.status_code == 200:
            break
        await asyncio.sleep(0.2)  # a pooled connection that died may fail once
    assert chat.status_code == 200
    assert [m["content"] for m in chat.json()["messages"]][-1:] == ["back?"]


async def test_a_cached_session_is_read_without_the_database(
    owned_postgres: OwnedPostgres, http: httpx.AsyncClient
) -> None:
    """Its record and its recent messages are in memory: with PostgreSQL stopped the
    snapshot and the message window still answer, exactly as before."""
    gql = GraphQLClient(http)
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    await gql.data("mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    for n in range(3):
        await http.post("/api/system", headers=headers, params={"message": f"note {n}"})
    recent = (
        "query($id: ID!) { session(id: $id) { title messages(last: 20) { nodes { content } } } }"
    )
    await http.get("/api/state", headers=headers)  # takes the unread notices
    state = (await http.get("/api/state", headers=headers)).json()
    window = await gql.data(recent, id=session_id)
    assert [m["content"] for m in state["messages"]] == ["note 0", "note 1", "note 2"]

    owned_postgres.stop()
    async with asyncio.timeout(60):
        again = await http.get("/api/state", headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == state
        assert await gql.data(recent, id=session_id) == window
