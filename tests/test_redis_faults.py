"""Redis going away and coming back, on a Redis owned by the test (never the shared one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from runtime.events import RESYNC_REQUIRED, Event
from runtime.events.redis_bus import RedisEventBus
from server import create_app
from settings import Settings
from tests.conftest import GraphQLClient, new_id, started
from tests.owned_redis import OwnedRedis


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[OwnedRedis]:
    server = OwnedRedis(tmp_path, persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[OwnedRedis]:
    server = OwnedRedis(tmp_path, persistent=True)
    server.start()
    yield server
    server.stop()


async def connected_bus(url: str) -> RedisEventBus:
    bus = RedisEventBus(url, queue_limit=100, replay_limit=100)
    await bus.start()
    await asyncio.wait_for(bus.connected.wait(), 5)
    return bus


async def take(subscription: AsyncIterator[Event], count: int, timeout: float = 15) -> list[Event]:
    async def collect() -> list[Event]:
        return [await anext(subscription) for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout)


async def take_until(
    subscription: AsyncIterator[Event], event_type: str, timeout: float = 15
) -> list[Event]:
    """Events up to and including the first of `event_type`."""
    taken: list[Event] = []
    async with asyncio.timeout(timeout):
        while not taken or taken[-1].type != event_type:
            taken.append(await anext(subscription))
    return taken


async def test_listener_survives_a_restart_and_outage_events_arrive(
    volatile_redis: OwnedRedis,
) -> None:
    bus = await connected_bus(volatile_redis.url)
    session_id = uuid.uuid4()
    try:
        async with bus.subscribe(session_id) as subscription:
            await bus.publish(session_id, "default", "system_notice", {"message": "before"})
            [before] = await take(subscription, 1)

            volatile_redis.stop()
            for n in range(3):  # never raises; queued for retry
                assert (
                    await bus.publish(
                        session_id, "default", "system_notice", {"message": f"during {n}"}
                    )
                    is None
                )
            assert bus.stats["publish_failures"] >= 1
            assert bus.pending_publishes == 3

            volatile_redis.start()
            received = await take(subscription, 4)
            # The log died with the server: the subscriber is told, and still gets
            # every event that was waiting in the retry buffer, in order.
            assert received[0].type == RESYNC_REQUIRED
            assert [e.data["message"] for e in received[1:]] == [f"during {n}" for n in range(3)]
            assert received[1].id > before.id  # ids never go back, even on a fresh log
            assert bus.pending_publishes == 0
            assert bus.stats["retried"] == 3

            await bus.publish(session_id, "default", "system_notice", {"message": "after"})
            [after] = await take(subscription, 1)
            assert after.data["message"] == "after"
    finally:
        await bus.stop()


async def test_with_persistence_resuming_by_cursor_after_a_restart_loses_nothing(
    persistent_redis: OwnedRedis,
) -> None:
    bus = await connected_bus(persistent_redis.url)
    session_id = uuid.uuid4()
    try:
        published = [
            await bus.publish(session_id, "default", "system_notice", {"message": f"m{n}"})
            for n in range(5)
        ]
        cursor = published[1]
        assert cursor is not None
        persistent_redis.stop()
        persistent_redis.start()
        await asyncio.wait_for(_reconnected(bus), 10)
        async with bus.subscribe(session_id, after=cursor.id) as subscription:
            events = await take(subscription, 3)
        assert [e.data["message"] for e in events] == ["m2", "m3", "m4"]
    finally:
        await bus.stop()


async def test_without_persistence_resuming_by_cursor_gets_resync_required(
    volatile_redis: OwnedRedis,
) -> None:
    bus = await connected_bus(volatile_redis.url)
    session_id = uuid.uuid4()
    try:
        cursor = await bus.publish(session_id, "default", "system_notice", {"message": "m0"})
        assert cursor is not None
        volatile_redis.stop()
        volatile_redis.start()
        await asyncio.wait_for(_reconnected(bus), 10)
        async with bus.subscribe(session_id, after=cursor.id) as subscription:
            [notice] = await take(subscription, 1)
        assert notice.type == RESYNC_REQUIRED
        assert notice.data["code"] == "CURSOR_EXPIRED"
    finally:
        await bus.stop()


async def _reconnected(bus: RedisEventBus) -> None:
    while True:
        try:
            await bus.ping()
            return
        except Exception:
            await asyncio.sleep(0.1)


async def test_mutations_succeed_while_redis_is_down(
    volatile_redis: OwnedRedis, settings: Settings
) -> None:
    app = create_app(settings.with_overrides(event_bus_url=volatile_redis.url))
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            gql = GraphQLClient(http)
            bus = app.state.runtime.events
            session_id = new_id()
            await gql.data("mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
            async with bus.subscribe(uuid.UUID(session_id)) as subscription:
                volatile_redis.stop()
                renamed = await gql.data(
                    'mutation($id: ID!) { renameSession(id: $id, title: "Offline") { title } }',
                    id=session_id,
                )
                assert renamed["renameSession"]["title"] == "Offline"
                read = await gql.data(
                    "query($id: ID!) { session(id: $id) { title } }", id=session_id
                )
                assert read["session"]["title"] == "Offline"  # queries work without Redis
                for _ in range(50):  # the writer fails in the background
                    status = (await http.get("/readyz")).json()
                    if status["events"]["publish_failures"]:
                        break
                    await asyncio.sleep(0.1)
                assert status["ready"] is True
                assert status["events"]["publish_failures"] >= 1
                assert status["events"]["pending_publishes"] >= 1

                volatile_redis.start()
                # The restarted Redis lost its log: a subscriber whose gap is filled
                # before the waiting event is published is told to resync first; one
                # that got the event live first has missed nothing and is not.
                events = await take_until(subscription, "title_changed")
                assert [e.type for e in events[:-1]] in ([], ["resync_required"])
                assert events[-1].data["new_title"] == "Offline"
