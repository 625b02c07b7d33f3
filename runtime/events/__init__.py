"""The event bus: envelope, subscriptions, and the memory and Redis backends."""

from __future__ import annotations

from runtime.events.bus import EventBus
from runtime.events.envelope import EVENT_TYPES, RESYNC_REQUIRED, Event
from runtime.events.subscription import SubscriberOverflow, Subscription
from runtime.redis_clients import redis_kind


def create_bus(url: str, queue_limit: int, replay_limit: int) -> EventBus:
    """The backend the URL names (runtime/redis_clients.py's one rule); Redis is
    imported only when used."""
    kind = redis_kind(url)
    if kind == "memory":
        from runtime.events.memory_bus import MemoryEventBus

        return MemoryEventBus(queue_limit, replay_limit)
    if kind == "cluster":
        from runtime.events.redis_cluster_bus import RedisClusterEventBus

        return RedisClusterEventBus(url, queue_limit, replay_limit)
    from runtime.events.redis_bus import RedisEventBus

    return RedisEventBus(url, queue_limit, replay_limit)


__all__ = [
    "EVENT_TYPES",
    "RESYNC_REQUIRED",
    "Event",
    "EventBus",
    "SubscriberOverflow",
    "Subscription",
    "create_bus",
]
