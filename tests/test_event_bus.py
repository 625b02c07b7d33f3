"""The event bus, the same tests on the memory and Redis backends."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest

from runtime.events import (
    RESYNC_REQUIRED,
    Event,
    EventBus,
    SubscriberOverflow,
    Subscription,
)
from runtime.events.memory_bus import MemoryEventBus
from runtime.events.redis_bus import RedisEventBus


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    event_bus: EventBus
    if request.param == "memory":
        event_bus = MemoryEventBus(queue_limit=50, replay_limit=20)
    else:
        event_bus = RedisEventBus(request.getfixturevalue("redis_url"), 50, 20)
    await event_bus.start()
    if isinstance(event_bus, RedisEventBus):
        await asyncio.wait_for(event_bus.connected.wait(), 5)
    yield event_bus
    await event_bus.stop()


async def take(subscription: AsyncIterator[Event], count: int) -> list[Event]:
    async def collect() -> list[Event]:
        return [await anext(subscription) for _ in range(count)]

    return await asyncio.wait_for(collect(), 5)


async def publish_n(bus: EventBus, session_id: uuid.UUID, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await bus.publish(session_id, "default", "system_notice", {"message": f"n{n}"})


async def test_live_events_carry_the_envelope_and_increasing_ids(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    async with bus.subscribe(session_id) as subscription:
        await publish_n(bus, session_id, 3)
        events = await take(subscription, 3)
    assert [e.data["message"] for e in events] == ["n0", "n1", "n2"]
    assert [e.id - events[0].id for e in events] == [0, 1, 2]
    first = events[0]
    assert first.type == "system_notice"
    assert first.session_id == session_id
    assert first.app == "default"
    assert first.ts.tzinfo is not None


async def test_events_of_other_sessions_are_not_delivered(bus: EventBus) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    async with bus.subscribe(mine) as subscription:
        await bus.publish(other, "default", "system_notice", {"message": "not yours"})
        await bus.publish(mine, "default", "system_notice", {"message": "yours"})
        [event] = await take(subscription, 1)
    assert event.data["message"] == "yours"


async def test_resume_from_a_cursor_replays_exactly_the_missed_events(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    async with bus.subscribe(session_id) as subscription:
        await publish_n(bus, session_id, 3)
        seen = await take(subscription, 3)
    await publish_n(bus, session_id, 4, start=3)  # missed while away
    async with bus.subscribe(session_id, after=seen[-1].id) as resumed:
        await publish_n(bus, session_id, 2, start=7)  # live after resuming
        events = await take(resumed, 6)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(anext(resumed), 0.3)
    assert [e.data["message"] for e in events] == [f"n{n}" for n in range(3, 9)]
    assert [e.id for e in events] == list(range(seen[-1].id + 1, seen[-1].id + 7))


async def test_resume_while_publishing_has_no_gap_and_no_duplicate(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    first = await bus.publish(session_id, "default", "system_notice", {"message": "n0"})
    assert first is not None

    async def publisher() -> None:
        for n in range(1, 16):
            await bus.publish(session_id, "default", "system_notice", {"message": f"n{n}"})
            await asyncio.sleep(0)

    task = asyncio.create_task(publisher())
    async with bus.subscribe(session_id, after=first.id) as subscription:
        events = await take(subscription, 15)
    await task
    assert [e.data["message"] for e in events] == [f"n{n}" for n in range(1, 16)]


async def test_a_cursor_older_than_the_log_gets_resync_required(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    first = await bus.publish(session_id, "default", "system_notice", {"message": "n0"})
    assert first is not None
    await publish_n(bus, session_id, 60, start=1)  # the log keeps about 20
    async with bus.subscribe(session_id, after=first.id) as subscription:
        [notice, retained] = await take(subscription, 2)
        await bus.publish(session_id, "default", "system_notice", {"message": "live"})
        rest: list[Event] = []
        while not rest or rest[-1].data["message"] != "live":
            rest += await take(subscription, 1)
    assert notice.type == RESYNC_REQUIRED
    assert notice.data["code"] == "CURSOR_EXPIRED"
    # What the log still has follows, from the resync's own cursor on, then live.
    assert retained.id == notice.id + 1
    assert [e.id for e in [retained, *rest]] == list(
        range(retained.id, retained.id + len(rest) + 1)
    )
    assert rest[-2].data["message"] == "n60"


async def test_a_cursor_the_log_never_had_gets_resync_required(bus: EventBus) -> None:
    async with bus.subscribe(uuid.uuid4(), after=123456) as subscription:
        [notice] = await take(subscription, 1)
    assert notice.type == RESYNC_REQUIRED


async def test_a_current_cursor_resumes_quietly(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    last = await bus.publish(session_id, "default", "system_notice", {"message": "n0"})
    assert last is not None
    async with bus.subscribe(session_id, after=last.id) as subscription:
        await bus.publish(session_id, "default", "system_notice", {"message": "n1"})
        [event] = await take(subscription, 1)
    assert event.data["message"] == "n1"


async def test_a_slow_subscriber_is_closed_and_a_fast_one_is_unaffected(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    async with (
        bus.subscribe(session_id) as slow,
        bus.subscribe(session_id) as fast,
    ):
        received: list[Event] = []

        async def consume() -> None:
            async for event in fast:
                received.append(event)
                if len(received) == 80:
                    return

        consumer = asyncio.create_task(consume())
        for n in range(80):  # the queue bound is 50; `slow` never reads
            await bus.publish(session_id, "default", "tool_update", {"n": n})
            await asyncio.sleep(0)
        await asyncio.wait_for(consumer, 5)
        assert [e.data["n"] for e in received] == list(range(80))
        with pytest.raises(SubscriberOverflow):
            await asyncio.wait_for(anext(slow), 5)


async def test_subscriber_count_and_cleanup(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    async with bus.subscribe(session_id), bus.subscribe(session_id):
        assert bus.subscriber_count(session_id) == 2
    assert bus.subscriber_count(session_id) == 0


async def test_forget_drops_the_replay_log(bus: EventBus) -> None:
    session_id = uuid.uuid4()
    first = await bus.publish(session_id, "default", "system_notice", {"message": "n0"})
    await bus.publish(session_id, "default", "system_notice", {"message": "n1"})
    assert first is not None
    await bus.forget(session_id)
    async with bus.subscribe(session_id, after=first.id) as subscription:
        [notice] = await take(subscription, 1)
    assert notice.type == RESYNC_REQUIRED


async def test_redis_uses_one_listener_connection_for_many_subscribers(redis_url: str) -> None:
    import redis.asyncio as redis

    bus = RedisEventBus(redis_url, queue_limit=10, replay_limit=10)
    await bus.start()
    await asyncio.wait_for(bus.connected.wait(), 5)
    session_id = uuid.uuid4()
    probe = redis.Redis.from_url(redis_url)
    try:
        async with many_subscriptions(bus, session_id, 150) as subscriptions:
            numsub = dict(await probe.pubsub_numsub(f"confab:ev:{session_id}"))
            assert numsub[f"confab:ev:{session_id}".encode()] == 1
            await bus.publish(session_id, "default", "system_notice", {"message": "all"})
            for subscription in subscriptions:
                [event] = await take(subscription, 1)
                assert event.data["message"] == "all"
        numsub = dict(await probe.pubsub_numsub(f"confab:ev:{session_id}"))
        assert numsub[f"confab:ev:{session_id}".encode()] == 0
    finally:
        await probe.aclose()
        await bus.stop()


@contextlib.asynccontextmanager
async def many_subscriptions(
    bus: EventBus, session_id: uuid.UUID, count: int
) -> AsyncIterator[list[Subscription]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(bus.subscribe(session_id)) for _ in range(count)]
