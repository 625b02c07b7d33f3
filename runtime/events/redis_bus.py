"""`redis://`: live delivery over Redis pub/sub, replay from a per-session Redis Stream.

One listener connection per process carries every channel this process watches
(reference-counted through the base class's first/last subscriber hooks), so the
number of Redis connections does not grow with subscribers. Publishing is one Lua
script (runtime/events/publish_script.py): take the session's next id, append to
its stream (trimmed by length), publish the same envelope, refresh expiry; a retry
of an event already stored is recognised and not stored or published again.

Publishes go through one ordered outbox that a writer task drains in pipelined
batches, so a request never waits on Redis and a burst costs one round trip.
When Redis goes away, the outbox (bounded) holds events until it returns; the
listener reconnects with backoff, resubscribes, and fills each subscriber's gap
from the stream (or tells it `resync_required`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
from runtime.events.publish_script import SINGLE, PublishSerials
from runtime.events.session_keys import SessionKeys, session_keys
from runtime.redis_clients import redis_client

logger = logging.getLogger(__name__)

CONNECTION_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
# Events sent per round trip, and how long a caller that asked to wait will wait.
BATCH = 256
# How long a subscriber waits for Redis to confirm its channel's SUBSCRIBE.
SUBSCRIBE_WAIT = 5.0
PUBLISH_WAIT = 2.0


def _keys(session_id: UUID) -> SessionKeys:
    return session_keys(session_id, cluster=False)


@dataclass(frozen=True, slots=True)
class _Pending:
    session_id: UUID
    app: str
    event_type: str
    data: dict[str, Any]
    ts: datetime
    ttl: int
    serial: int  # this publisher's, for recognising a retry (publish_script.py)


@dataclass(slots=True)
class _Outgoing:
    """An event to publish, or a session's log to drop, in outbox order."""

    pending: _Pending | None = None
    forget: list[UUID] | None = None
    future: asyncio.Future[Event | None] | None = None

    def resolve(self, event: Event | None) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(event)


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
        self._redis = _single(
            redis_client(url, socket_timeout=2, socket_connect_timeout=1, retry=no_retry)
        )
        self._listener_redis = _single(
            redis_client(url, socket_timeout=None, socket_connect_timeout=1, retry=no_retry)
        )
        self._script = self._redis.register_script(SINGLE)
        self._serials = PublishSerials()
        self._outbox: deque[_Outgoing] = deque()
        self._outbox_ready = asyncio.Event()
        self._outbox_empty = asyncio.Event()
        self._retry_buffer = retry_buffer
        self._writer_task: asyncio.Task[None] | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._channels: set[str] = set()
        self._channels_changed = asyncio.Event()
        # Channels whose SUBSCRIBE Redis has not confirmed yet (see `_watch`).
        self._unconfirmed: dict[str, asyncio.Future[None]] = {}
        self._stopping = False
        self.connected = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._listener_task = asyncio.create_task(self._listen(), name="confab-redis-listener")
        self._writer_task = asyncio.create_task(self._write(), name="confab-redis-writer")

    async def stop(self) -> None:
        await super().stop()
        self._stopping = True
        if self._outbox:  # give the writer a moment to flush what is queued
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), 2)
        for task in (self._listener_task, self._writer_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._outbox:
            logger.warning("stopping with %d unpublished events", len(self._outbox))
        await self._close_pubsub()
        await self._redis.aclose()
        await self._listener_redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    async def _drained(self) -> None:
        await self._outbox_empty.wait()

    # -- publishing: one ordered outbox, drained in pipelined batches ----------------

    async def publish(
        self,
        session_id: UUID,
        app: str,
        event_type: str,
        data: dict[str, Any],
        ttl: int = 0,
        wait: bool = True,
    ) -> Event | None:
        serial = self._serials.next()
        pending = _Pending(session_id, app, event_type, data, utc_now(), ttl, serial)
        return await self._enqueue(_Outgoing(pending=pending), wait)

    async def forget_many(self, session_ids: list[UUID]) -> None:
        # Through the outbox, so it lands after the sessions' last events.
        if session_ids:
            await self._enqueue(_Outgoing(forget=list(session_ids)), wait=True)

    async def _enqueue(self, item: _Outgoing, wait: bool) -> Event | None:
        if len(self._outbox) >= self._retry_buffer:
            dropped = self._outbox.popleft()
            self.stats["dropped"] += 1
            dropped.resolve(None)
            logger.error("publish buffer full: dropped the oldest waiting event")
        if wait:
            item.future = asyncio.get_running_loop().create_future()
        self._outbox.append(item)
        self._outbox_empty.clear()
        self._outbox_ready.set()
        if item.future is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), PUBLISH_WAIT)
        except TimeoutError:
            return None  # still queued: it goes out when Redis answers

    async def _write(self) -> None:
        """The single writer: keeps the outbox's order, batches what has piled up."""
        delay = 0.05
        failing = False
        while not self._stopping:
            if not self._outbox:
                self._outbox_empty.set()
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
                continue
            batch = list(itertools.islice(self._outbox, BATCH))
            try:
                results = await self._send(batch)
            except CONNECTION_ERRORS as exc:
                self.stats["publish_failures"] += 1
                if not failing:
                    logger.warning(
                        "publishing failed (%s); %d events wait for Redis", exc, len(self._outbox)
                    )
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for _ in batch:
                self._outbox.popleft()
            for item, result in zip(batch, results, strict=True):
                if item.pending is None or result is None:
                    # Forgotten logs, and a retry whose stored copy left the log.
                    item.resolve(None)
                    continue
                self.stats["published"] += 1
                if failing:
                    self.stats["retried"] += 1
                item.resolve(from_json(result))
            if failing and not self._outbox:
                logger.info("Redis is back: every waiting event was published")
                failing = False
            delay = 0.05

    async def _send(self, batch: list[_Outgoing]) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in batch:
                if item.forget is not None:
                    pipe.delete(*(k for s in item.forget for k in _keys(s).stored))
                    continue
                assert item.pending is not None
                pending = item.pending
                keys = _keys(pending.session_id)
                body = body_json(
                    pending.event_type, pending.session_id, pending.app, pending.ts, pending.data
                )
                await self._script(
                    keys=[keys.counter, keys.stream, keys.marks],
                    args=[
                        first_cursor(),
                        body,
                        self.replay_limit,
                        keys.channel,
                        pending.ttl * 1000,
                        self._serials.token,
                        pending.serial,
                    ],
                    client=pipe,
                )
            return await pipe.execute()

    @property
    def pending_publishes(self) -> int:
        return len(self._outbox)

    # -- the replay log ------------------------------------------------------------

    async def read_log(self, session_id: UUID, after: int) -> LogRead:
        async with self._redis.pipeline(transaction=True) as pipe:
            keys = _keys(session_id)
            pipe.xrange(keys.stream, min=f"{after + 1}-0", max="+")
            pipe.get(keys.counter)
            entries, head = await pipe.execute()
        events = [from_json(fields[b"e"]) for _, fields in entries]
        return log_read(events, after, int(head) if head is not None else 0)

    async def head(self, session_id: UUID) -> int:
        head = await self._redis.get(_keys(session_id).counter)
        return 0 if head is None else int(head)

    # -- the listener ----------------------------------------------------------------

    async def _watch(self, session_id: UUID) -> None:
        channel = _keys(session_id).channel
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is not None and self.connected.is_set():
            # Redis delivers to a channel from when it has taken the SUBSCRIBE,
            # which another connection's commands may overtake: wait for its
            # confirmation, so the head the subscriber starts from (read next) is
            # read after it and no event falls between the two.
            confirmed = self._unconfirmed.get(channel)
            if confirmed is None or confirmed.done():
                confirmed = asyncio.get_running_loop().create_future()
                self._unconfirmed[channel] = confirmed
            try:
                await pubsub.subscribe(channel)
                self._channels_changed.set()  # an idle listener reads the confirmation
                await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
            except CONNECTION_ERRORS as exc:
                logger.warning("subscribe to %s failed (%s); the listener will retry", channel, exc)
        self._channels_changed.set()

    async def _unwatch(self, session_id: UUID) -> None:
        channel = _keys(session_id).channel
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
        pubsub = self._listener_redis.pubsub()
        self._pubsub = pubsub
        # A PING proves the connection; the subscribe below restores every channel,
        # confirmed before the gaps are filled (what the log lacks then, arrives).
        await self._listener_redis.ping()
        if self._channels:
            await pubsub.subscribe(*self._channels)
            await self._until_confirmed(pubsub, set(self._channels))
        self.connected.set()

    async def _until_confirmed(self, pubsub: Any, channels: set[str]) -> None:
        """Read the connection until Redis has confirmed every channel's SUBSCRIBE,
        delivering the events that come first."""
        async with asyncio.timeout(SUBSCRIBE_WAIT):
            while channels:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    channels.discard(_text(message.get("channel")))
                    self._handle(message)

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
            if message is not None:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "message":
            self.deliver(from_json(message["data"]))
        elif kind == "subscribe":
            confirmed = self._unconfirmed.pop(_text(message.get("channel")), None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)

    async def _fill_gaps(self) -> None:
        for subscriptions in list(self._subscribers.values()):
            for subscription in list(subscriptions):
                await self._fill_gap(subscription)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _single(client: object) -> Redis:
    assert isinstance(client, Redis), "redis_bus serves single-server URLs"
    return client


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
