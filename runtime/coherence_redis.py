"""Session versions in Redis, so a replica's cached copy is checked against the
latest write of any replica (runtime/coherence.py has the protocol and the rule),
except while this replica is provably the only writer (runtime/coherence_sole.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from uuid import UUID, uuid4

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from runtime.coherence_sole import (
    MARGIN_SECONDS,
    PRESENCE_LUA,
    PRESENT_KEY,
    SOLE_KEY,
    TICK_LUA,
    TICK_SECONDS,
    SoleLease,
)
from runtime.periodic import Periodic
from runtime.redis_clients import redis_client

logger = logging.getLogger(__name__)


# Versions only go up: keep the larger of the stored and the new one.
# KEYS[n] the version key, ARGV[m] the version, ARGV[m + 1] its time to live.
def _raise_lua(n: int, m: int) -> str:
    return f"""
local current = tonumber(redis.call('GET', KEYS[{n}]) or '0')
if tonumber(ARGV[{m}]) > current then redis.call('SET', KEYS[{n}], ARGV[{m}], 'EX', ARGV[{m + 1}])
else redis.call('EXPIRE', KEYS[{n}], ARGV[{m + 1}]) end
"""


# A cluster: the version key alone. One server: with this replica's presence, in one
# script, returning how long another replica's sole lease has left (to wait out).
_RAISE = _raise_lua(1, 1) + "return 0"
_RAISE_PRESENT = PRESENCE_LUA + _raise_lua(3, 2) + "return others_lease"
_DROP_PRESENT = PRESENCE_LUA + "redis.call('DEL', KEYS[3])\nreturn others_lease"
KEY_TTL = 86_400  # a version unused for a day goes; a miss just means one reload


class RedisCoherence:
    def __init__(self, url: str, replica_id: str | None = None) -> None:
        self._redis = redis_client(url, socket_timeout=1, socket_connect_timeout=0.5)
        # A single server: checks are batched, and the sole lease applies.
        self._single = isinstance(self._redis, Redis)
        self._sole = SoleLease(replica_id or uuid4().hex)
        self._raise = self._redis.register_script(_RAISE_PRESENT if self._single else _RAISE)
        self._drop = self._redis.register_script(_DROP_PRESENT)
        self._tick_script = self._redis.register_script(TICK_LUA)
        self._ticker = Periodic("coherence lease", TICK_SECONDS, self._tick, first=True)
        # Checks asked for in one turn of the event loop go out as one MGET on the
        # next (a single server; a cluster's keys live on different nodes): each is
        # sent after it was asked for, so it sees every write answered before.
        self._asked: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._sending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._single:
            self._ticker.start()

    async def _tick(self) -> None:
        sent_at = time.monotonic()
        try:
            holds, _ = await self._tick_script(
                keys=[SOLE_KEY, PRESENT_KEY], args=[self._sole.replica_id]
            )
        except (RedisError, OSError) as exc:
            if self._sole.alone():
                logger.warning("sole lease not renewed, checking every read: %s", exc)
            self._sole.lapse()
            return
        self._sole.ticked(sent_at, bool(holds))

    def alone(self) -> bool:
        """Whether this replica now answers known sessions without a check."""
        return self._sole.alone()

    async def is_current(self, session_id: UUID, version: int) -> bool:
        if self._sole.known(session_id):
            return True
        period = self._sole.period()
        try:
            latest = await self._latest(_key(session_id))
        except (RedisError, RedisClusterException, OSError):
            return False
        current = latest is not None and int(latest) <= version
        if current:
            self._sole.checked(session_id, period)
        return current

    async def _latest(self, key: str) -> bytes | None:
        if not self._single:
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
        key = _key(session_id)
        try:
            if self._single:
                args: list[str | int] = [self._sole.replica_id, version, KEY_TTL]
                lease_left = await self._raise(keys=[SOLE_KEY, PRESENT_KEY, key], args=args)
            else:
                lease_left = await self._raise(keys=[key], args=[version, KEY_TTL])
        except (RedisError, RedisClusterException, OSError) as exc:
            # Readers that cannot see this version reload from the database anyway
            # (a missing or older key is never taken as current for a newer write).
            logger.warning("could not record session %s version %d: %s", session_id, version, exc)
            return
        await _wait_out(int(lease_left))

    async def deleted(self, session_id: UUID) -> None:
        self._sole.forget(session_id)
        key = _key(session_id)
        try:
            if self._single:
                lease_left = await self._drop(
                    keys=[SOLE_KEY, PRESENT_KEY, key], args=[self._sole.replica_id]
                )
            else:
                await self._redis.delete(key)
                lease_left = 0
        except (RedisError, RedisClusterException, OSError) as exc:
            logger.warning("could not drop session %s version: %s", session_id, exc)
            return
        await _wait_out(int(lease_left))

    async def aclose(self) -> None:
        await self._ticker.stop()
        await self._redis.aclose()


async def _wait_out(lease_ms: int) -> None:
    """Until another replica's sole lease is over: only then may this write be
    answered, since that replica answers its cached copies unchecked until then."""
    if lease_ms > 0:
        await asyncio.sleep(lease_ms / 1000 + MARGIN_SECONDS)


def _key(session_id: UUID) -> str:
    return f"confab:ver:{session_id}"
