"""Leases in Redis: held across replicas, gone on their own if their holder dies
(runtime/leases.py has the protocol)."""

from __future__ import annotations

import uuid

from runtime.redis_clients import redis_client

# Release only our own lease: compare the holder before deleting.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


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
