"""The bus counts what operators watch (confab_events_* metrics): a slow subscriber
dropped once, when it overflows, and events replayed to a resuming subscriber."""

from __future__ import annotations

import uuid

from runtime.events.memory_bus import MemoryEventBus


async def test_an_overflowing_subscriber_is_counted_once() -> None:
    bus = MemoryEventBus(queue_limit=2, replay_limit=100)
    session = uuid.uuid4()
    async with bus.subscribe(session):
        for number in range(5):  # never read: the third overflows it
            await bus.publish(session, "default", "custom", {"n": number})
    assert bus.stats["overflows"] == 1
    assert bus.stats["delivered"] == 2


async def test_events_replayed_to_a_resuming_subscriber_are_counted() -> None:
    bus = MemoryEventBus(queue_limit=100, replay_limit=100)
    session = uuid.uuid4()
    first = await bus.publish(session, "default", "custom", {"n": 0})
    for number in range(1, 4):
        await bus.publish(session, "default", "custom", {"n": number})
    assert first is not None
    async with bus.subscribe(session, after=first.id) as subscription:
        replayed = [await anext(aiter(subscription)) for _ in range(3)]
    assert [event.data["n"] for event in replayed] == [1, 2, 3]
    assert bus.stats["replayed"] == 3
