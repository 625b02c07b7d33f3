"""What replicas share, chosen once from `CONFAB_EVENT_BUS`.

One process (`memory://`, the embedded default): the bus, session versions, turn
leases and rate-limit counters all live in this process, and no Redis client is
imported. Redis (a server or a cluster; runtime/redis_clients.py's one rule for the
URL): all four go through it, so every replica sees the same events, versions,
leases and counts. Nothing else picks a backend from the URL; the persisted-query
store asks `redis_url` below, the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.coherence import Coherence, LocalCoherence
from runtime.events.bus import EventBus
from runtime.leases import Leases, MemoryLeases
from runtime.rate_limits import Counters, MemoryCounters
from runtime.redis_clients import redis_kind


@dataclass(frozen=True, slots=True)
class SharedState:
    """Each part is closed by its user (runtime/core.py)."""

    events: EventBus
    coherence: Coherence
    leases: Leases
    counters: Counters


def redis_url(event_bus_url: str) -> str | None:
    """The Redis replicas share (the URL itself), or None in one process."""
    return None if redis_kind(event_bus_url) == "memory" else event_bus_url


def create_shared_state(event_bus_url: str, queue_limit: int, replay_limit: int) -> SharedState:
    kind = redis_kind(event_bus_url)
    if kind == "memory":
        from runtime.events.memory_bus import MemoryEventBus

        return SharedState(
            MemoryEventBus(queue_limit, replay_limit),
            LocalCoherence(),
            MemoryLeases(),
            MemoryCounters(),
        )
    from runtime.coherence_redis import RedisCoherence
    from runtime.counters_redis import RedisCounters
    from runtime.leases_redis import RedisLeases

    events: EventBus
    if kind == "cluster":
        from runtime.events.redis_cluster_bus import RedisClusterEventBus

        events = RedisClusterEventBus(event_bus_url, queue_limit, replay_limit)
    else:
        from runtime.events.redis_bus import RedisEventBus

        events = RedisEventBus(event_bus_url, queue_limit, replay_limit)
    return SharedState(
        events,
        RedisCoherence(event_bus_url),
        RedisLeases(event_bus_url),
        RedisCounters(event_bus_url),
    )
