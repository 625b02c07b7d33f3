"""Session versions in Redis, so a replica's cached copy is checked against the
latest write of any replica (runtime/coherence.py has the protocol and the rule)."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from runtime.redis_clients import redis_client

logger = logging.getLogger(__name__)

# Versions only go up: keep the larger of the stored and the new one.
_RAISE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
KEY_TTL = 86_400  # a version unused for a day goes; a miss just means one reload


class RedisCoherence:
    def __init__(self, url: str) -> None:
        self._redis = redis_client(url, socket_timeout=1, socket_connect_timeout=0.5)
        self._raise = self._redis.register_script(_RAISE)
        # Checks asked for in one turn of the event loop go out as one MGET on the
        # next (a single server; a cluster's keys live on different nodes): each is
        # sent after it was asked for, so it sees every write answered before.
        self._batching = isinstance(self._redis, Redis)
        self._asked: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def is_current(self, session_id: UUID, version: int) -> bool:
        try:
            latest = await self._latest(_key(session_id))
        except (RedisError, RedisClusterException, OSError):
            return False
        return latest is not None and int(latest) <= version

    async def _latest(self, key: str) -> bytes | None:
        if not self._batching:
            value: bytes | None = await self._redis.get(key)  # type: ignore[assignment]
            return value
        loop = asyncio.get_running_loop()
        if not self._asked:
            loop.call_soon(self._send)
        future: asyncio.Future[bytes | None] = loop.create_future()
        self._asked.setdefault(key, []).append(future)
        return await future

    def _send(self) -> None:
        asked, self._asked = self._asked, {}
        task = asyncio.create_task(self._answer(asked))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _answer(self, asked: dict[str, list[asyncio.Future[bytes | None]]]) -> None:
        keys = list(asked)
        try:
            values = await self._redis.mget(keys)
        except BaseException as exc:
            # Every asker gets an answer, whatever went wrong (a cancelled check at
            # shutdown too): a failed check means "reload from the database".
            failure = exc if isinstance(exc, RedisError | OSError) else RedisError(repr(exc))
            for futures in asked.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for key, value in zip(keys, values, strict=True):
            for future in asked[key]:
                if not future.done():
                    future.set_result(value)  # type: ignore[arg-type]

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
