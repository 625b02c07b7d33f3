"""Registered persisted queries in Redis, shared by every replica (schema/persisted.py
uses it when the event bus is Redis): a day's TTL refreshed on each read, at most
`SHARED_LIMIT` documents, oldest dropped first. Redis being down degrades to the
process's own cache for `REDIS_RETRY_SECONDS`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from redis.exceptions import RedisClusterException, RedisError

from runtime.redis_clients import redis_client

if TYPE_CHECKING:
    from runtime.redis_clients import AnyRedis

logger = logging.getLogger(__name__)

KEY_PREFIX = "confab:pq:"
INDEX_KEY = "confab:pq:index"  # registered hashes by registration time, for the count cap
TTL_SECONDS = 86_400
SHARED_LIMIT = 10_000
REDIS_RETRY_SECONDS = 1.0  # after a Redis failure, the LRU alone for this long


class SharedDocuments:
    """Registered documents in Redis, shared by every replica."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: AnyRedis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0

    def _redis(self) -> AnyRedis | None:
        if time.monotonic() < self._down_until:
            return None
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # Created in the loop that uses it (a client is bound to its loop).
            self._client = redis_client(self._url, socket_timeout=1, socket_connect_timeout=0.5)
            self._loop = loop
        return self._client

    async def get(self, digest: str) -> str | None:
        redis = self._redis()
        if redis is None:
            return None
        try:
            value = await redis.getex(KEY_PREFIX + digest, ex=TTL_SECONDS)
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failed(exc)
            return None
        if value is None:
            return None
        return value if isinstance(value, str) else bytes(value).decode("utf-8")

    async def put(self, digest: str, text: str) -> None:
        redis = self._redis()
        if redis is None:
            return
        now = time.time()
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.set(KEY_PREFIX + digest, text, ex=TTL_SECONDS)
                pipe.zadd(INDEX_KEY, {digest: now})
                pipe.zremrangebyscore(INDEX_KEY, "-inf", now - TTL_SECONDS)
                pipe.zcard(INDEX_KEY)
                pipe.expire(INDEX_KEY, TTL_SECONDS)
                count = (await pipe.execute())[3]
            if count > SHARED_LIMIT:
                evicted: list[tuple[bytes, float]] = await redis.zpopmin(  # type: ignore[assignment]
                    INDEX_KEY, count - SHARED_LIMIT
                )
                if evicted:
                    await redis.delete(*(KEY_PREFIX + m.decode() for m, _ in evicted))
        except (RedisError, RedisClusterException, OSError) as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
        logger.warning("persisted queries: Redis unavailable, using this process's only: %r", exc)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
