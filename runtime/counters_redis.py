"""Rate-limit counters in Redis, one count for every replica (runtime/rate_limits.py
has the protocol and the limits). Each command touches one key, so this works on a
Redis Cluster too; Redis's errors leave as `CountersUnavailable`."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import RedisClusterException, RedisError

from runtime.rate_limits import CountersUnavailable
from runtime.redis_clients import redis_client

T = TypeVar("T")

# KEYS: counter. ARGV: amount, limit, window ms. Returns 0 if counted, else the ms
# left in the window (nothing counted).
_TAKE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if current + amount > tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then left = tonumber(ARGV[3]) end
  return left
end
if redis.call('INCRBY', KEYS[1], amount) == amount then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 0
"""
# KEYS: the client's slots (a sorted set by expiry). ARGV: member, limit, now ms,
# slot ms. Returns 0 if the member holds a slot now, else the ms until one frees.
_HOLD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local expires = tonumber(ARGV[3]) + tonumber(ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], expires, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - tonumber(ARGV[3]))
"""


async def _answered(call: Awaitable[T]) -> T:
    try:
        return await call
    except (RedisError, RedisClusterException) as exc:
        raise CountersUnavailable(type(exc).__name__) from exc


class RedisCounters:
    def __init__(self, url: str) -> None:
        self._redis = redis_client(url, socket_timeout=2, socket_connect_timeout=1)
        self._take = self._redis.register_script(_TAKE)
        self._hold = self._redis.register_script(_HOLD)

    async def take(self, key: str, amount: int, limit: int, window: float) -> float:
        left = await _answered(self._take(keys=[key], args=[amount, limit, int(window * 1000)]))
        return int(left) / 1000

    async def hold(self, key: str, member: str, limit: int, seconds: float) -> float:
        now_ms = int(time.time() * 1000)
        wait = await _answered(
            self._hold(keys=[key], args=[member, limit, now_ms, int(seconds * 1000)])
        )
        return int(wait) / 1000

    async def release(self, key: str, member: str) -> None:
        await _answered(self._redis.zrem(key, member))

    async def remember(self, key: str, value: str, seconds: float) -> None:
        await _answered(self._redis.set(key, value, px=int(seconds * 1000)))

    async def recall(self, key: str) -> str | None:
        value = await _answered(self._redis.getdel(key))
        return None if value is None else value.decode() if isinstance(value, bytes) else str(value)

    async def aclose(self) -> None:
        await self._redis.aclose()
