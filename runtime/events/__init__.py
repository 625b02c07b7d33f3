"""The event bus: envelope, subscriptions, and the memory and Redis backends."""

from __future__ import annotations

from runtime.events.bus import EventBus
from runtime.events.envelope import EVENT_TYPES, RESYNC_REQUIRED, Event
from runtime.events.subscription import SubscriberOverflow, Subscription


def create_bus(url: str, queue_limit: int, replay_limit: int) -> EventBus:
    """The backend the URL names; Redis is imported only when used."""
    if url.startswith("memory://"):
        from runtime.events.memory_bus import MemoryEventBus

        return MemoryEventBus(queue_limit, replay_limit)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from runtime.events.redis_bus import RedisEventBus

        return RedisEventBus(url, queue_limit, replay_limit)
    raise ValueError(f"CONFAB_EVENT_BUS: unsupported URL {url!r} (memory:// or redis://)")


__all__ = [
    "EVENT_TYPES",
    "RESYNC_REQUIRED",
    "Event",
    "EventBus",
    "SubscriberOverflow",
    "Subscription",
    "create_bus",
]
