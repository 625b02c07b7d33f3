"""Session lifecycle: TTL expiry, the janitor, cache eviction (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette

from models import Message, Session, Thread
from runtime import keys
from runtime.janitor import Janitor
from runtime.leases import MemoryLeases
from server import create_app
from settings import Settings
from tests.conftest import GraphQLClient, new_id, serving, started
from tests.waiting import until

CREATE = "mutation($id: ID!) { createSession(id: $id) { id expiresAt } }"
READ = "query($id: ID!) { session(id: $id) { id expiresAt } }"
SEND = 'mutation($s: ID!) { sendMessage(sessionId: $s, content: "hi") { expiresAt } }'


@pytest.fixture
async def quick_app(settings: Settings) -> AsyncIterator[Starlette]:
    """Janitor every 0.2 s, cache entries idle for more than 0.5 s evicted."""
    app = create_app(
        settings.with_overrides(janitor_interval=0.2, janitor_batch=2, cache_idle_seconds=0.5)
    )
    async with started(app):
        yield app


@pytest.fixture
async def ephemeral(quick_app: Starlette) -> AsyncIterator[GraphQLClient]:
    """A client of the app whose sessions live 1 s after their last activity."""
    key, _ = await keys.create_key(["ephemeral"])
    transport = httpx.ASGITransport(app=quick_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield GraphQLClient(http, key)


async def test_expiry_is_visible_and_refreshed_by_activity(ephemeral: GraphQLClient) -> None:
    session_id = new_id()
    created = (await ephemeral.data(CREATE, id=session_id))["createSession"]
    first = datetime.fromisoformat(created["expiresAt"])
    # `ephemeral` sessions live 1 s: created at `first - 1 s`; let the clock move on.
    moved_on = first - timedelta(seconds=1) + timedelta(milliseconds=20)
    await until(lambda: datetime.now(UTC) > moved_on, "the clock to move on")
    refreshed = datetime.fromisoformat(
        (await ephemeral.data(SEND, s=session_id))["sendMessage"]["expiresAt"]
    )
    assert refreshed > first


async def test_an_expired_session_is_unknown_and_its_id_reusable(
    ephemeral: GraphQLClient, quick_app: Starlette
) -> None:
    await quick_app.state.runtime.janitor.stop()  # expired, but not yet swept
    session_id = new_id()
    await ephemeral.data(CREATE, id=session_id)

    async def expired() -> bool:
        return (await ephemeral.data(READ, id=session_id))["session"] is None

    await until(expired, "the session to expire (1 s)")
    http = ephemeral.http
    state = await http.get(
        "/api/state", headers={"X-Session-Id": session_id, "X-API-Key": ephemeral.key or ""}
    )
    assert state.json()["title"] is None  # REST: unknown too
    again = (await ephemeral.data(CREATE, id=session_id))["createSession"]
    assert again["id"] == session_id  # a new session with the same id


async def test_the_janitor_deletes_expired_sessions_in_batches(
    ephemeral: GraphQLClient, quick_app: Starlette
) -> None:
    ids = [new_id() for _ in range(5)]
    for session_id in ids:
        await ephemeral.data(SEND, s=session_id)  # with messages
    keeper = new_id()
    await GraphQLClient(ephemeral.http).data(CREATE, id=keeper)  # default app: no TTL
    runtime = quick_app.state.runtime

    async def swept() -> bool:
        return not await Session.filter(id__in=ids).exists()

    await until(swept, "the janitor to delete the expired sessions")
    assert not await Message.filter(session_id__in=ids).exists()
    assert not await Thread.filter(session_id__in=ids).exists()
    assert await Session.filter(id=keeper).exists()
    assert runtime.janitor.swept >= 5
    assert not any(runtime.sessions.is_loaded(uuid.UUID(i)) for i in ids)


async def test_only_one_janitor_sweeps_at_a_time(app: Starlette, settings: Settings) -> None:
    runtime = app.state.runtime
    session_id = uuid.uuid4()
    await runtime.store.create_session(
        session_id, "default", {"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}
    )
    leases = MemoryLeases()
    first = Janitor(runtime.store, runtime.sessions, runtime.events, leases, settings)
    second = Janitor(runtime.store, runtime.sessions, runtime.events, leases, settings)
    assert await leases.acquire("janitor", 5)  # another janitor is mid-sweep
    assert await second.sweep() == 0
    assert await Session.filter(id=session_id).exists()  # left alone meanwhile
    await leases.release("janitor")
    assert await first.sweep() >= 1
    assert not await Session.filter(id=session_id).exists()


async def test_idle_sessions_leave_the_cache_and_reload_intact(
    quick_app: Starlette,
) -> None:
    transport = httpx.ASGITransport(app=quick_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        gql = GraphQLClient(http)
        session_id = new_id()
        await gql.data(
            'mutation($id: ID!) { createSession(id: $id, title: "Kept") { id } }', id=session_id
        )
        host = quick_app.state.runtime.sessions
        assert host.is_loaded(uuid.UUID(session_id))
        await until(
            lambda: not host.is_loaded(uuid.UUID(session_id)), "the idle session's eviction"
        )
        read = await gql.data("query($id: ID!) { session(id: $id) { title } }", id=session_id)
        assert read["session"] == {"title": "Kept"}
        assert host.is_loaded(uuid.UUID(session_id))


async def test_the_cache_stays_within_its_size(settings: Settings) -> None:
    async with serving(settings.with_overrides(session_cache_size=3)) as (app, http):
        gql = GraphQLClient(http)
        ids = [new_id() for _ in range(6)]
        for session_id in ids:
            await gql.data(CREATE, id=session_id)
        host = app.state.runtime.sessions
        assert len(host.loaded_ids()) == 3
        for session_id in ids:  # every one still reads back
            assert (await gql.data(READ, id=session_id))["session"]["id"] == session_id
