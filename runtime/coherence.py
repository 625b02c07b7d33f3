"""Cache coherence across replicas.

Every session write bumps its version in the database. With replicas, the
writer also raises the session's version in Redis before it answers, and a
cache hit checks that version (one round trip): a stale copy is reloaded, so a
write answered by one replica is visible to a read on any other at once. If
Redis cannot answer, the copy is treated as stale (read from the database).
"""

from __future__ import annotations

import logging
from typing import Protocol
from uuid import UUID

from redis.exceptions import RedisClusterException, RedisError

from runtime.redis_clients import redis_client, uses_redis

logger = logging.getLogger(__name__)

# Versions only go up: keep the larger of the stored and the new one.
_RAISE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
KEY_TTL = 86_400  # a version unused for a day goes; a miss just means one reload


class Coherence(Protocol):
    async def is_current(self, session_id: UUID, version: int) -> bool: ...

    async def written(self, session_id: UUID, version: int) -> None: ...

    async def deleted(self, session_id: UUID) -> None: ...

    async def aclose(self) -> None: ...


class LocalCoherence:
    """One process: its cache is the only copy, always current."""

    async def is_current(self, session_id: UUID, version: int) -> bool:
        return True

    async def written(self, session_id: UUID, version: int) -> None:
        return None

    async def deleted(self, session_id: UUID) -> None:
        return None

    async def aclose(self) -> None:
        return None


class RedisCoherence:
    def __init__(self, url: str) -> None:
        self._redis = redis_client(url, socket_timeout=1, socket_connect_timeout=0.5)
        self._raise = self._redis.register_script(_RAISE)

    async def is_current(self, session_id: UUID, version: int) -> bool:
        try:
            latest = await self._redis.get(_key(session_id))
        except (RedisError, RedisClusterException, OSError):
            return False
        return latest is not None and int(latest) <= version

    async def written(self, session_id: UUID, version: int) -> None:
        try:
            await self._raise(keys=[_key(session_id)], args=[version, KEY_TTL])
        except (RedisError, RedisClusterException, OSError) as exc:
            # Readers that cannot see this version reload from the database anyway
            # (a missing or older key is never taken as current for a newer write).
            logger.warning("could not record session %s version %d: %s", session_id, version, exc)

    async def deleted(self, session_id: UUID) -> None:
        try:
            await self._redis.delete(_key(session_id))
        except (RedisError, RedisClusterException, OSError) as exc:
            logger.warning("could not drop session %s version: %s", session_id, exc)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _key(session_id: UUID) -> str:
    return f"confab:ver:{session_id}"


def create_coherence(event_bus_url: str) -> Coherence:
    if uses_redis(event_bus_url):
        return RedisCoherence(event_bus_url)
    return LocalCoherence()
