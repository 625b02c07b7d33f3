"""Leases: at most one holder of a name at a time, for a bounded time.

With Redis they hold across replicas (and expire if their holder dies); in the
embedded mode there is one process, so an in-process table is enough.
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol

from runtime.redis_clients import redis_client, uses_redis

# Release only our own lease: compare the holder before deleting.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class Leases(Protocol):
    holder: str

    async def acquire(self, name: str, seconds: float) -> bool: ...

    async def renew(self, name: str, seconds: float) -> bool: ...

    async def release(self, name: str) -> None: ...

    async def held(self, name: str) -> bool:
        """Whether anyone (any replica) holds the lease now."""
        ...

    async def aclose(self) -> None: ...


class MemoryLeases:
    def __init__(self) -> None:
        self.holder = f"process-{uuid.uuid4().hex[:8]}"
        self._until: dict[str, float] = {}

    async def acquire(self, name: str, seconds: float) -> bool:
        now = time.monotonic()
        if self._until.get(name, 0) > now:
            return False
        self._until[name] = now + seconds
        return True

    async def renew(self, name: str, seconds: float) -> bool:
        if name not in self._until:
            return False
        self._until[name] = time.monotonic() + seconds
        return True

    async def release(self, name: str) -> None:
        self._until.pop(name, None)

    async def held(self, name: str) -> bool:
        return self._until.get(name, 0) > time.monotonic()

    async def aclose(self) -> None:
        return None


class RedisLeases:
    def __init__(self, url: str) -> None:
        self.holder = f"replica-{uuid.uuid4().hex[:12]}"
        self._redis = redis_client(url, socket_timeout=2, socket_connect_timeout=1)
        self._release = self._redis.register_script(_RELEASE)
        self._renew = self._redis.register_script(_RENEW)

    async def acquire(self, name: str, seconds: float) -> bool:
        key = f"confab:lease:{name}"
        return bool(await self._redis.set(key, self.holder, nx=True, px=int(seconds * 1000)))

    async def renew(self, name: str, seconds: float) -> bool:
        key = f"confab:lease:{name}"
        return bool(await self._renew(keys=[key], args=[self.holder, int(seconds * 1000)]))

    async def release(self, name: str) -> None:
        await self._release(keys=[f"confab:lease:{name}"], args=[self.holder])

    async def held(self, name: str) -> bool:
        return bool(await self._redis.exists(f"confab:lease:{name}"))

    async def aclose(self) -> None:
        await self._redis.aclose()


def create_leases(event_bus_url: str) -> Leases:
    if uses_redis(event_bus_url):
        return RedisLeases(event_bus_url)
    return MemoryLeases()
