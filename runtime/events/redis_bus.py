"""`redis://`: live delivery over Redis pub/sub, replay from a per-session Redis Stream.

One listener connection per process carries every channel this process watches
(reference-counted through the base class's first/last subscriber hooks), so the
number of Redis connections does not grow with subscribers. Publishing is one Lua
script: take the session's next id, append to its stream (trimmed by length),
publish the same envelope, refresh expiry.

When Redis goes away, publishes queue in a bounded buffer and are retried in order
by a background task; the listener reconnects with backoff, resubscribes, and
fills each subscriber's gap from the stream (or tells it `resync_required`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from runtime.events.bus import EventBus, LogRead, log_read
from runtime.events.envelope import Event, body_json, first_cursor, from_json, utc_now

logger = logging.getLogger(__name__)

# KEYS: counter, stream. ARGV: first id, envelope body (JSON without id, starting
# with "{"), stream max length, channel, ttl in ms (0: none).
_PUBLISH = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local id = string.format('%d', redis.call('INCR', KEYS[1]))
local envelope = '{"id":' .. id .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id .. '-0', 'e', envelope)
redis.call('PUBLISH', ARGV[4], envelope)
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return envelope
"""

CONNECTION_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def _counter_key(session_id: UUID) -> str:
    return f"confab:seq:{session_id}"


def _stream_key(session_id: UUID) -> str:
    return f"confab:log:{session_id}"


def _channel(session_id: UUID) -> str:
    return f"confab:ev:{session_id}"


@dataclass(frozen=True, slots=True)
class _Pending:
    session_id: UUID
    app: str
    event_type: str
    data: dict[str, Any]
    ts: datetime
    ttl: int


class RedisEventBus(EventBus):
    def __init__(
        self,
        url: str,
        queue_limit: int,
        replay_limit: int,
        retry_buffer: int = 10_000,
    ) -> None:
        super().__init__(queue_limit, replay_limit)
        self.url = url
        # Fail fast: a publish must not stall a mutation while Redis is away.
        no_retry = Retry(NoBackoff(), 0)
        self._redis = Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=1, retry=no_retry
        )
        self._listener_redis = Redis.from_url(
            url, socket_timeout=None, socket_connect_timeout=1, retry=no_retry
        )
        self._script = self._redis.register_script(_PUBLISH)
        self._pending: deque[_Pending] = deque()
        self._retry_buffer = retry_buffer
        self._retry_task: asyncio.Task[None] | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._channels: set[str] = set()
        self._channels_changed = asyncio.Event()
        self._stopping = False
        self.connected = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._listener_task = asyncio.create_task(self._listen(), name="confab-redis-listener")

    async def stop(self) -> None:
        await super().stop()
        self._stopping = True
        for task in (self._listener_task, self._retry_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._pending:
            logger.warning("stopping with %d unpublished events", len(self._pending))
        await self._close_pubsub()
        await self._redis.aclose()
        await self._listener_redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    # -- publishing --------------------------------------------------------------

    async def publish(
        self, session_id: UUID, app: str, event_type: str, data: dict[str, Any], ttl: int = 0
    ) -> Event | None:
        pending = _Pending(session_id, app, event_type, data, utc_now(), ttl)
        if self._pending:  # keep order behind what is already waiting
            self._buffer(pending)
            return None
        try:
            return await self._publish_now(pending)
        except CONNECTION_ERRORS as exc:
            self.stats["publish_failures"] += 1
            logger.warning("publish of %s failed (%s); will retry", event_type, exc)
            self._buffer(pending)
            return None

    async def _publish_now(self, pending: _Pending) -> Event:
        envelope = await self._script(
            keys=[_counter_key(pending.session_id), _stream_key(pending.session_id)],
            args=[
                first_cursor(),
                body_json(
                    pending.event_type, pending.session_id, pending.app, pending.ts, pending.data
                ),
                self.replay_limit,
                _channel(pending.session_id),
                pending.ttl * 1000,
            ],
        )
        self.stats["published"] += 1
        return from_json(envelope)

    def _buffer(self, pending: _Pending) -> None:
        if len(self._pending) >= self._retry_buffer:
            dropped = self._pending.popleft()
            self.stats["dropped"] += 1
            logger.error("retry buffer full: dropped a %s event", dropped.event_type)
        self._pending.append(pending)
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.create_task(self._retry(), name="confab-publish-retry")

    async def _retry(self) -> None:
        delay = 0.05
        while self._pending and not self._stopping:
            try:
                await self._publish_now(self._pending[0])
            except CONNECTION_ERRORS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._pending.popleft()
            self.stats["retried"] += 1
            delay = 0.05
        if not self._pending:
            logger.info("publish retry buffer drained")

    @property
    def pending_publishes(self) -> int:
        return len(self._pending)

    # -- the replay log ------------------------------------------------------------

    async def read_log(self, session_id: UUID, after: int) -> LogRead:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xrange(_stream_key(session_id), min=f"{after + 1}-0", max="+")
            pipe.get(_counter_key(session_id))
            entries, head = await pipe.execute()
        events = [from_json(fields[b"e"]) for _, fields in entries]
        return log_read(events, after, int(head) if head is not None else 0)

    async def head(self, session_id: UUID) -> int:
        head = await self._redis.get(_counter_key(session_id))
        return 0 if head is None else int(head)

    async def forget(self, session_id: UUID) -> None:
        try:
            await self._redis.delete(_counter_key(session_id), _stream_key(session_id))
        except CONNECTION_ERRORS as exc:
            # The keys expire with the session's TTL anyway.
            logger.warning("could not drop the replay log of %s: %s", session_id, exc)

    # -- the listener ----------------------------------------------------------------

    async def _watch(self, session_id: UUID) -> None:
        channel = _channel(session_id)
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is not None and self.connected.is_set():
            try:
                await pubsub.subscribe(channel)
            except CONNECTION_ERRORS as exc:
                logger.warning("subscribe to %s failed (%s); the listener will retry", channel, exc)
        self._channels_changed.set()

    async def _unwatch(self, session_id: UUID) -> None:
        channel = _channel(session_id)
        self._channels.discard(channel)
        pubsub = self._pubsub
        if pubsub is not None and self.connected.is_set():
            with contextlib.suppress(*CONNECTION_ERRORS):
                await pubsub.unsubscribe(channel)

    async def _listen(self) -> None:
        delay = 0.1
        first = True
        while not self._stopping:
            try:
                await self._connect()
                if not first:
                    logger.info("Redis listener reconnected; filling gaps from the replay log")
                    await self._fill_gaps()
                first = False
                delay = 0.1
                await self._pump()
            except asyncio.CancelledError:
                raise
            except CONNECTION_ERRORS as exc:
                self.connected.clear()
                logger.warning(
                    "Redis listener lost its connection (%s); retrying in %.1fs", exc, delay
                )
            except Exception:
                self.connected.clear()
                logger.exception("Redis listener failed; restarting in %.1fs", delay)
            await self._close_pubsub()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _connect(self) -> None:
        pubsub = self._listener_redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub = pubsub
        # A PING proves the connection; the subscribe below restores every channel.
        await self._listener_redis.ping()
        if self._channels:
            await pubsub.subscribe(*self._channels)
        self.connected.set()

    async def _pump(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while not self._stopping:
            if not pubsub.subscribed:
                self._channels_changed.clear()
                if self._channels:
                    await pubsub.subscribe(*self._channels)
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._channels_changed.wait(), timeout=5)
                # Idle: prove the server is still there rather than trusting silence.
                await self._listener_redis.ping()
                continue
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            if message.get("type") == "message":
                self.deliver(from_json(message["data"]))

    async def _fill_gaps(self) -> None:
        for session_id, subscriptions in list(self._subscribers.items()):
            for subscription in list(subscriptions):
                if not subscription.position_known:
                    # Where it stood is unknown (the log was unreadable when it
                    # subscribed): it must refetch, then continue from the head.
                    head = LogRead([], complete=False, head=await self.head(session_id))
                    subscription.push(self._resync_event(session_id, 0, head))
                    subscription.position_known = True
                    self.stats["resyncs"] += 1
                    continue
                read = await self.read_log(session_id, subscription.high_water)
                if not read.complete:
                    self.stats["resyncs"] += 1
                    subscription.push(self._resync_event(session_id, subscription.high_water, read))
                for event in read.events:
                    subscription.push(event)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
