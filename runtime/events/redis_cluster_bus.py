"""`redis+cluster://`: the Redis bus on a Redis Cluster, over sharded pub/sub.

What the single-server bus does (runtime/events/redis_bus.py), arranged so that no
node, slot or session can hold up another:

- Keys and channel of a session share a hash tag (runtime/events/session_keys.py),
  so the publish script and its `SPUBLISH` run on the session's slot (Redis 7
  allows `SPUBLISH` in a script when the channel is in the script's slot). No
  classic `PUBLISH`: it is broadcast over the cluster bus to every node.
- The outbox is one FIFO per session. A dispatcher routes each session's head to
  the master of its slot and keeps at most one pipelined batch in flight per node,
  each from the sessions that node owns. A batch that fails (node gone, MOVED,
  ASK, TRYAGAIN, CLUSTERDOWN) is retried for its sessions only; other nodes'
  batches go on meanwhile, and a session's events never overtake each other.
- MOVED re-reads the topology; ASK sends that session (only: other sessions of a
  migrating slot may still live on the source) to the importing node with
  `ASKING`; a dead master's sessions wait, bounded, until its replica is promoted.
- The script (runtime/events/publish_script.py) never gives out an id at or below
  the highest one this process saw acknowledged for the session, so a promoted
  replica that missed the last writes before its master died does not hand the
  same ids out again; and it recognises a retried event the dead master (or the
  replica it reached) already stored, so it is not stored or sent twice.
- Live delivery: one `ShardListener` (runtime/events/shard_listener.py) per
  master that owns a watched session's slot, each with its own connection and
  reconnect. When a slot moves (the node's unasked `sunsubscribe`) or a master
  fails over, only the channels whose owner changed move, and each moved
  session's gap is filled from its log before its next live event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from typing import Any
from uuid import UUID

from redis.asyncio import Redis, RedisCluster
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.retry import Retry

from runtime.events.bus import EventBus, LogRead, log_read
from runtime.events.envelope import Event, body_json, first_cursor, from_json, utc_now
from runtime.events.publish_script import CLUSTER, PublishSerials
from runtime.events.redis_bus import BATCH, PUBLISH_WAIT, _Outgoing, _Pending
from runtime.events.session_keys import SessionKeys, session_keys
from runtime.events.shard_listener import ShardListener
from runtime.events.subscription import Subscription
from runtime.redis_clients import node_client, redis_client

logger = logging.getLogger(__name__)

# The log after a cursor and the counter, read together (one slot, one node).
_READ = """
return {redis.call('XRANGE', KEYS[2], ARGV[1], '+'), redis.call('GET', KEYS[1])}
"""

CONNECTION_ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)
FLOORS = 100_000  # sessions whose last acknowledged id this process remembers
RETRY_SLOT = 0.02  # TRYAGAIN / CLUSTERDOWN / an unserved slot: retry after this
TOPOLOGY_POLL = 0.25  # how often the topology is re-read while a node is unreachable


def _keys(session_id: UUID) -> SessionKeys:
    return session_keys(session_id, cluster=True)


class RedisClusterEventBus(EventBus):
    def __init__(
        self, url: str, queue_limit: int, replay_limit: int, retry_buffer: int = 10_000
    ) -> None:
        super().__init__(queue_limit, replay_limit)
        self.url = url
        self.stats.update({"resubscribed": 0, "redirects": 0})
        self._no_retry = Retry(NoBackoff(), 0)
        cluster = redis_client(
            url, socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
        )
        assert isinstance(cluster, RedisCluster)
        self._cluster = cluster
        self._script = AsyncScript(cluster, CLUSTER)
        self._serials = PublishSerials()
        self._read = cluster.register_script(_READ)
        self._retry_buffer = retry_buffer
        # The outbox: per session, in publish order.
        self._queues: dict[UUID, deque[_Outgoing]] = {}
        self._count = 0
        self._busy: set[UUID] = set()  # sessions with a batch in flight
        self._hold: dict[UUID, float] = {}  # session -> retry no sooner than
        self._node_hold: dict[str, tuple[float, float]] = {}  # node -> (until, backoff)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._asking: dict[UUID, str] = {}  # session -> importing node (ASK)
        self._moved: dict[int, str] = {}  # slot -> new owner, until the topology says so
        self._floors: OrderedDict[UUID, int] = OrderedDict()
        self._writers: dict[str, Redis] = {}
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        # Live delivery.
        self._listeners: dict[str, ShardListener] = {}
        self._placed: dict[UUID, str] = {}  # watched session -> its listener's node
        self._unpositioned: set[Subscription] = set()
        self._reconcile = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._failing = False
        self.connected = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="confab-cluster-writer"),
            asyncio.create_task(self._reconcile_loop(), name="confab-cluster-topology"),
        ]

    async def stop(self) -> None:
        await super().stop()
        self._stopping = True
        if self._count:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), 2)
        for task in [*self._tasks, *self._inflight.values()]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._count:
            logger.warning("stopping with %d unpublished events", self._count)
        for listener in list(self._listeners.values()):
            await listener.stop()
        for client in self._writers.values():
            await client.aclose()
        await self._cluster.aclose()

    async def ping(self) -> None:
        await self._cluster.ping()

    @property
    def pending_publishes(self) -> int:
        return self._count

    # -- topology ----------------------------------------------------------------

    def _owner(self, slot: int) -> str | None:
        moved = self._moved.get(slot)
        if moved is not None:
            return moved
        try:
            return str(self._cluster.nodes_manager.get_node_from_slot(slot).name)
        except (SlotNotCoveredError, KeyError, AttributeError):
            return None

    async def _refresh(self) -> None:
        try:
            await self._cluster.initialize()  # the first time only; then re-read:
            await self._cluster.nodes_manager.initialize()
        except CONNECTION_ERRORS as exc:
            logger.warning("could not read the cluster topology: %s", exc)
            return
        self._moved.clear()
        for session_id, node in list(self._asking.items()):
            if self._owner(key_slot(_keys(session_id).counter.encode())) == node:
                del self._asking[session_id]  # the migration finished
        self._wake.set()

    async def _reconcile_loop(self) -> None:
        """Re-reads the topology when asked, and puts each channel where its slot is."""
        first = True
        while not self._stopping:
            if not first:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._reconcile.wait(), TOPOLOGY_POLL)
                if not self._reconcile.is_set() and not self._unsettled():
                    continue
            self._reconcile.clear()
            first = False
            await self._refresh()
            await self._place_all()
            if self._cluster.nodes_manager.slots_cache:
                self.connected.set()

    def _unsettled(self) -> bool:
        """A listener is down, a batch is failing, or a session has no home yet."""
        return (
            self._failing
            or any(not listener.connected.is_set() for listener in self._listeners.values())
            or any(s not in self._placed for s in self._subscribers)
        )

    async def _place_all(self) -> None:
        for session_id in list(self._subscribers):
            channel = _keys(session_id).channel
            owner = self._owner(key_slot(channel.encode()))
            current = self._placed.get(session_id)
            if owner is None or owner == current:
                continue
            if current is not None:
                self.stats["resubscribed"] += 1
                if current in self._listeners:
                    await self._listeners[current].remove(channel)
            self._placed[session_id] = owner
            await self._listener(owner).add(channel, session_id, fill=current is not None)
        for name, listener in list(self._listeners.items()):
            if not listener.channels:
                del self._listeners[name]
                await listener.stop()

    def _listener(self, name: str) -> ShardListener:
        listener = self._listeners.get(name)
        if listener is None:
            host, _, port = name.rpartition(":")
            client = node_client(
                self.url,
                host,
                int(port),
                socket_timeout=None,
                socket_connect_timeout=1,
                retry=self._no_retry,
            )
            listener = ShardListener(
                name, client, self.deliver, self._fill, self._lost, self._channel_moved
            )
            self._listeners[name] = listener
            listener.start()
        return listener

    def _lost(self, name: str) -> None:
        self._reconcile.set()

    def _channel_moved(self, channel: str, session_id: UUID) -> None:
        # The slot left that node: forget where it was, so the next pass places it
        # on its new owner and fills its gap there.
        if self._placed.get(session_id) is not None:
            self._placed[session_id] = ""
        self._reconcile.set()

    # -- subscribing -----------------------------------------------------------------

    async def _watch(self, session_id: UUID) -> None:
        # The subscriber that asked is positioned only after this returns.
        self._unpositioned.update(self._subscribers.get(session_id, ()))
        channel = _keys(session_id).channel
        owner = self._owner(key_slot(channel.encode()))
        if owner is None:
            self._reconcile.set()  # placed (and its gap filled) once the slot is served
            return
        self._placed[session_id] = owner
        listener = self._listener(owner)
        await listener.add(channel, session_id, fill=False)
        # A new listener subscribes as it connects: wait for that (bounded), so
        # the channel is live before the subscriber's position is read.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(listener.connected.wait(), PUBLISH_WAIT)

    async def _position(self, subscription: Subscription, after: int | None) -> None:
        # Until its position is read, a gap fill has nothing to go by: it skips it.
        self._unpositioned.add(subscription)
        try:
            await super()._position(subscription, after)
        finally:
            self._unpositioned.discard(subscription)

    async def _unwatch(self, session_id: UUID) -> None:
        node = self._placed.pop(session_id, None)
        listener = self._listeners.get(node or "")
        if listener is not None:
            await listener.remove(_keys(session_id).channel)

    async def _fill(self, session_id: UUID) -> None:
        """Everything after what each local subscriber of the session has."""
        for subscription in list(self._subscribers.get(session_id, ())):
            if subscription not in self._unpositioned:
                await self._fill_gap(subscription)

    # -- the replay log ------------------------------------------------------------

    async def read_log(self, session_id: UUID, after: int) -> LogRead:
        keys = _keys(session_id)
        entries, head = await self._read(keys=[keys.counter, keys.stream], args=[f"{after + 1}-0"])
        events = []
        for _, fields in entries:
            values = dict(zip(fields[::2], fields[1::2], strict=True))
            events.append(from_json(values[b"e"]))
        return log_read(events, after, int(head) if head is not None else 0)

    async def head(self, session_id: UUID) -> int:
        head = await self._cluster.get(_keys(session_id).counter)
        return 0 if head is None else int(head)

    # -- publishing ----------------------------------------------------------------

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
        item = self._enqueue(session_id, _Outgoing(pending=pending), wait)
        return await self._waited(item)

    async def forget_many(self, session_ids: list[UUID]) -> None:
        # Through each session's queue, so it lands after the session's last events.
        items = [self._enqueue(s, _Outgoing(forget=[s]), wait=True) for s in session_ids]
        futures = [item.future for item in items if item.future is not None]
        if futures:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*map(asyncio.shield, futures)), PUBLISH_WAIT)
        for session_id in session_ids:
            self._floors.pop(session_id, None)

    def _enqueue(self, session_id: UUID, item: _Outgoing, wait: bool) -> _Outgoing:
        if self._count >= self._retry_buffer:
            self._drop_oldest()
        if wait:
            item.future = asyncio.get_running_loop().create_future()
        self._queues.setdefault(session_id, deque()).append(item)
        self._count += 1
        self._empty.clear()
        self._wake.set()
        return item

    async def _waited(self, item: _Outgoing) -> Event | None:
        if item.future is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), PUBLISH_WAIT)
        except TimeoutError:
            return None  # still queued: it goes out when its node answers

    def _drop_oldest(self) -> None:
        for session_id, queue in self._queues.items():
            if session_id in self._busy or not queue:
                continue
            queue.popleft().resolve(None)
            self._count -= 1
            self.stats["dropped"] += 1
            if not queue:
                del self._queues[session_id]
            logger.error("publish buffer full: dropped the oldest waiting event")
            return

    async def _dispatch(self) -> None:
        """Starts a batch for every node that has work and none in flight."""
        while not self._stopping:
            self._wake.clear()
            now = time.monotonic()
            due = float("inf")
            plans: dict[str, list[tuple[UUID, _Outgoing]]] = {}
            for session_id, queue in self._queues.items():
                if session_id in self._busy:
                    continue
                hold = self._hold.get(session_id, 0.0)
                if hold > now:
                    due = min(due, hold)
                    continue
                node = self._asking.get(session_id) or self._owner(
                    key_slot(_keys(session_id).counter.encode())
                )
                if node is None:
                    self._hold[session_id] = now + RETRY_SLOT * 10
                    self._reconcile.set()
                    continue
                node_until = self._node_hold.get(node, (0.0, 0.0))[0]
                if node in self._inflight or node_until > now:
                    if node_until > now:
                        due = min(due, node_until)
                    continue
                plan = plans.setdefault(node, [])
                room = BATCH - len(plan)
                if room <= 0:
                    continue
                plan.extend((session_id, item) for item in list(queue)[:room])
                self._busy.add(session_id)
            for node, plan in plans.items():
                self._inflight[node] = asyncio.create_task(self._send(node, plan))
            if not self._count:
                self._empty.set()
            timeout = None if due == float("inf") else max(due - time.monotonic(), 0.001)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _writer(self, node: str) -> Redis:
        client = self._writers.get(node)
        if client is None:
            host, _, port = node.rpartition(":")
            client = node_client(
                self.url,
                host,
                int(port),
                socket_timeout=2,
                socket_connect_timeout=1,
                retry=self._no_retry,
            )
            self._writers[node] = client
        return client

    async def _send(self, node: str, plan: list[tuple[UUID, _Outgoing]]) -> None:
        try:
            try:
                results = await self._pipeline(node, plan)
            except CONNECTION_ERRORS as exc:
                self._node_failed(node, exc, len(plan))
                return
            self._node_hold.pop(node, None)
            self._settle(plan, results)
        finally:
            for session_id, _ in plan:
                self._busy.discard(session_id)
            self._inflight.pop(node, None)
            self._wake.set()

    async def _pipeline(self, node: str, plan: list[tuple[UUID, _Outgoing]]) -> list[Any]:
        async with self._writer(node).pipeline(transaction=False) as pipe:
            asked: list[bool] = []
            for session_id, item in plan:
                keys = _keys(session_id)
                ask = self._asking.get(session_id) == node
                asked.append(ask)
                if ask:
                    pipe.execute_command("ASKING")
                if item.forget is not None:
                    pipe.delete(*keys.stored)
                    continue
                assert item.pending is not None
                pending = item.pending
                body = body_json(
                    pending.event_type, session_id, pending.app, pending.ts, pending.data
                )
                floor = self._floors.get(session_id, 0)
                args: list[Any] = [
                    first_cursor(),
                    body,
                    self.replay_limit,
                    keys.channel,
                    pending.ttl * 1000,
                ]
                args += [self._serials.token, pending.serial, floor]
                await self._script(
                    keys=[keys.counter, keys.stream, keys.marks], args=args, client=pipe
                )
            raw = await pipe.execute(raise_on_error=False)
        # Drop the ASKING replies: one result per planned item.
        results: list[Any] = []
        position = 0
        for ask in asked:
            position += 1 if ask else 0
            results.append(raw[position])
            position += 1
        return results

    def _node_failed(self, node: str, exc: BaseException, count: int) -> None:
        self.stats["publish_failures"] += 1
        backoff = min(self._node_hold.get(node, (0.0, 0.025))[1] * 2, 1.0)
        self._node_hold[node] = (time.monotonic() + backoff, backoff)
        if not self._failing:
            logger.warning("publishing to %s failed (%s); %d events wait", node, exc, count)
        self._failing = True
        self._reconcile.set()  # a failover moves its slots: read the topology again

    def _settle(self, plan: list[tuple[UUID, _Outgoing]], results: list[Any]) -> None:
        failed: set[UUID] = set()
        for (session_id, item), result in zip(plan, results, strict=True):
            if isinstance(result, Exception):
                if session_id not in failed:
                    failed.add(session_id)
                    self._item_failed(session_id, result)
                continue
            if session_id in failed:
                # A later event went in after an earlier one failed: it is stored,
                # so it is not sent again (Redis never does this for one slot).
                logger.error("session %s: an event was stored out of order", session_id)
            queue = self._queues[session_id]
            if queue and queue[0] is item:
                queue.popleft()
            else:
                queue.remove(item)
            self._count -= 1
            if not queue:
                del self._queues[session_id]
                self._hold.pop(session_id, None)
            if item.pending is None or result is None:
                # Forgotten logs, and a retry whose stored copy left the log.
                item.resolve(None)
                continue
            event = from_json(result)
            self._remember(session_id, event.id)
            self.stats["published"] += 1
            if self._failing:
                self.stats["retried"] += 1
            item.resolve(event)
        if self._failing and not self._count:
            logger.info("Redis Cluster is back: every waiting event was published")
            self._failing = False

    def _item_failed(self, session_id: UUID, error: Exception) -> None:
        slot = key_slot(_keys(session_id).counter.encode())
        if isinstance(error, MovedError):
            self.stats["redirects"] += 1
            self._asking.pop(session_id, None)
            self._moved[slot] = f"{error.host}:{error.port}"
            self._reconcile.set()
        elif isinstance(error, AskError):
            self.stats["redirects"] += 1
            self._asking[session_id] = f"{error.host}:{error.port}"
        else:
            if not isinstance(error, TryAgainError | ClusterDownError):
                logger.warning("publishing to session %s failed: %s", session_id, error)
            self.stats["publish_failures"] += 1
            self._failing = True
            self._hold[session_id] = time.monotonic() + RETRY_SLOT
            self._reconcile.set()

    def _remember(self, session_id: UUID, event_id: int) -> None:
        self._floors[session_id] = event_id
        self._floors.move_to_end(session_id)
        if len(self._floors) > FLOORS:
            self._floors.popitem(last=False)
