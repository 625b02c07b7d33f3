"""One cluster node's shard channels (`SSUBSCRIBE`) on one connection, with its own reconnect.

The cluster bus keeps one of these per master that owns a watched session's slot.
Each runs its own task: a node that dies or stalls holds up only its own
sessions. Order is kept per session by filling gaps in this task, before any
later live message of the session is handed on: a session that was (re)subscribed
here after a reconnect or a slot move is marked, and its replay log is read
(everything after what each subscriber has) before its next live event, so the
log's events come first and the live copies of them are dropped by id.

The node tells us when a slot leaves it: Redis 7 sends an unasked `sunsubscribe`
for each shard channel of a migrated slot. That channel (and only that one) goes
back to the bus, which resubscribes it on the slot's new owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from runtime.events.envelope import Event, from_json

logger = logging.getLogger(__name__)

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
# How long a subscriber waits for the node to confirm its channel's SSUBSCRIBE.
SUBSCRIBE_WAIT = 5.0


class ShardListener:
    def __init__(
        self,
        name: str,
        client: Redis,
        deliver: Callable[[Event], None],
        fill: Callable[[UUID], Awaitable[None]],
        lost: Callable[[str], None],
        moved: Callable[[str, UUID], None],
    ) -> None:
        self.name = name
        self._client = client
        self._deliver = deliver
        self._fill = fill
        self._lost = lost
        self._moved = moved
        # Channel -> session: what this node should deliver.
        self.channels: dict[str, UUID] = {}
        self._needs_fill: set[UUID] = set()
        # Channels whose SSUBSCRIBE the node has not confirmed yet (see `add`), and
        # what arrived while a reconnect waited for its confirmations.
        self._unconfirmed: dict[str, asyncio.Future[None]] = {}
        self._early: list[dict[str, Any]] = []
        self._pubsub: PubSub | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"confab-shard-listener-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()
        await self._client.aclose()

    async def add(self, channel: str, session_id: UUID, *, fill: bool) -> None:
        """Deliver this channel from now on; with `fill`, read the gap first."""
        self.channels[channel] = session_id
        pubsub = self._pubsub
        if fill or pubsub is None or not self.connected.is_set():
            self._needs_fill.add(session_id)
        if pubsub is not None and self.connected.is_set():
            # Delivery starts when the node has taken the SSUBSCRIBE, which other
            # connections' commands may overtake: wait for its confirmation, so the
            # head the subscriber starts from (read next) is read after it.
            confirmed = asyncio.get_running_loop().create_future()
            self._unconfirmed[channel] = confirmed
            try:
                await pubsub.ssubscribe(channel)
                self._changed.set()  # an idle listener reads the confirmation
                await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_WAIT)
            except (*CONNECTION_ERRORS, ResponseError) as exc:
                # The reconnect resubscribes everything and fills each gap.
                logger.warning("SSUBSCRIBE %s on %s failed (%s)", channel, self.name, exc)
                self._needs_fill.add(session_id)
        self._changed.set()

    async def remove(self, channel: str) -> None:
        session_id = self.channels.pop(channel, None)
        if session_id is not None:
            self._needs_fill.discard(session_id)
        pubsub = self._pubsub
        if pubsub is not None and self.connected.is_set():
            with contextlib.suppress(*CONNECTION_ERRORS, ResponseError):
                await pubsub.sunsubscribe(channel)

    # -- the task --------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.05
        while not self._stopping:
            try:
                await self._connect()
                delay = 0.05
                await self._pump()
            except asyncio.CancelledError:
                raise
            except CONNECTION_ERRORS as exc:
                logger.warning("shard listener %s lost its connection (%s)", self.name, exc)
                self._lost(self.name)
            except Exception:
                logger.exception("shard listener %s failed; reconnecting", self.name)
                self._lost(self.name)
            await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _connect(self) -> None:
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        await self._client.ping()
        # One SSUBSCRIBE per slot (a node refuses channels of several slots at
        # once), again for channels added meanwhile, until none is left out.
        done: set[str] = set()
        while pending := [c for c in self.channels if c not in done]:
            by_slot: defaultdict[int, list[str]] = defaultdict(list)
            for channel in pending:
                by_slot[key_slot(channel.encode())].append(channel)
            for channels in by_slot.values():
                await pubsub.ssubscribe(*channels)
            done.update(pending)
        await self._until_confirmed(pubsub, done)
        # Whatever was published while this connection was away is in the log, read
        # once every channel is confirmed (what the log lacks then, arrives).
        self._needs_fill.update(self.channels.values())
        self.connected.set()

    async def _until_confirmed(self, pubsub: PubSub, channels: set[str]) -> None:
        """Read the connection until the node has confirmed every SSUBSCRIBE; the
        events that come first wait in `_early` for the gap fills."""
        async with asyncio.timeout(SUBSCRIBE_WAIT):
            while channels:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message.get("type") == "ssubscribe":
                    channels.discard(_text(message["channel"]))
                else:
                    self._early.append(message)

    async def _pump(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while not self._stopping:
            while self._needs_fill:
                await self._fill_one(next(iter(self._needs_fill)))
            while self._early:
                await self._handle(pubsub, self._early.pop(0))
            if not self.channels:
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=5)
                await self._client.ping()  # idle: prove the node is still there
                continue
            try:
                message = await pubsub.get_message(timeout=1.0)
            except ResponseError as exc:
                # An SSUBSCRIBE answered MOVED: the bus re-reads the topology and
                # moves whatever this node no longer owns.
                logger.info("shard listener %s: %s", self.name, exc)
                self._lost(self.name)
                continue
            if message is not None:
                await self._handle(pubsub, message)

    async def _handle(self, pubsub: PubSub, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ssubscribe":
            confirmed = self._unconfirmed.pop(_text(message["channel"]), None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == "smessage":
            event = from_json(message["data"])
            if event.session_id in self._needs_fill:
                await self._fill_one(event.session_id)
            self._deliver(event)
        elif kind == "sunsubscribe":
            raw = message["channel"]
            channel = _text(raw)
            session_id = self.channels.pop(channel, None)
            pubsub.shard_channels.pop(raw, None)
            if session_id is not None:  # not asked for: the slot moved away
                self._needs_fill.discard(session_id)
                self._moved(channel, session_id)

    async def _fill_one(self, session_id: UUID) -> None:
        await self._fill(session_id)
        self._needs_fill.discard(session_id)

    async def _close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self.connected.clear()
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
