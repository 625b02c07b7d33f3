"""The event bus: publish a session's events, subscribe with or without a cursor.

Backends (memory, Redis) provide storage of the replay log and live transport;
this base class owns what is common: in-process fan-out to local subscribers, the
subscribe protocol (register live first, then read the log, the subscription
dropping duplicates by id) and gap detection.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from runtime.events.envelope import RESYNC_REQUIRED, Event, utc_now
from runtime.events.subscription import Subscription

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LogRead:
    """Events after a cursor, and whether the log could account for all of them."""

    events: list[Event]
    complete: bool
    head: int  # the newest id the log knows (0 when it knows none)

    @property
    def resume_point(self) -> int:
        """The cursor just before the first event this read delivers."""
        return self.events[0].id - 1 if self.events else self.head


class EventBus(ABC):
    def __init__(self, queue_limit: int, replay_limit: int) -> None:
        self.queue_limit = queue_limit
        self.replay_limit = replay_limit
        self._subscribers: dict[UUID, set[Subscription]] = {}
        self.stats: dict[str, int] = {
            "published": 0,
            "publish_failures": 0,
            "retried": 0,
            "dropped": 0,
            "delivered": 0,
            "overflows": 0,
            "replayed": 0,
            "resyncs": 0,
            # Transport renderings of delivered events, each shared by every subscriber
            # that asked for the same thing (see schema/live.py).
            "rendered": 0,
        }

    # -- backend hooks ---------------------------------------------------------

    async def start(self) -> None:
        """Open connections and background tasks."""

    async def stop(self) -> None:
        """Close every subscription, then connections."""
        for subscriptions in list(self._subscribers.values()):
            for subscription in list(subscriptions):
                subscription.close()

    @abstractmethod
    async def publish(
        self,
        session_id: UUID,
        app: str,
        event_type: str,
        data: dict[str, Any],
        ttl: int = 0,
        wait: bool = True,
    ) -> Event | None:
        """Store the event in the replay log and deliver it live, in publish order.

        With `wait`, returns the event once stored, or None if that takes too long
        (it stays queued and goes out later); without, returns None at once. Never
        raises into the caller, whose change is already persisted. `ttl` (seconds,
        0 = none) bounds the log's life.
        """

    @abstractmethod
    async def read_log(self, session_id: UUID, after: int) -> LogRead: ...

    @abstractmethod
    async def head(self, session_id: UUID) -> int:
        """The newest id the session's log has given out (0: none)."""

    async def forget(self, session_id: UUID) -> None:
        """Drop the session's replay log and counter (the session is gone)."""
        await self.forget_many([session_id])

    @abstractmethod
    async def forget_many(self, session_ids: list[UUID]) -> None:
        """`forget` for many sessions at once (the janitor's batches)."""

    async def _watch(self, session_id: UUID) -> None:
        """The first local subscriber of a session arrived (e.g. subscribe its channel)."""

    async def _unwatch(self, session_id: UUID) -> None:
        """The last local subscriber of a session left."""

    # -- subscribing -------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(
        self, session_id: UUID, after: int | None = None
    ) -> AsyncIterator[Subscription]:
        """Live events of a session; with `after`, first everything since that cursor."""
        subscription = Subscription(session_id, self.queue_limit)
        local = self._subscribers.setdefault(session_id, set())
        local.add(subscription)
        try:
            if len(local) == 1:
                await self._watch(session_id)
            await self._position(subscription, after)
            yield subscription
        finally:
            subscription.close()
            local.discard(subscription)
            if not local and self._subscribers.get(session_id) is local:
                del self._subscribers[session_id]
                await self._unwatch(session_id)

    @property
    def pending_publishes(self) -> int:
        """Events accepted but not yet stored (waiting for Redis)."""
        return 0

    def subscriber_count(self, session_id: UUID | None = None) -> int:
        if session_id is None:
            return sum(len(s) for s in self._subscribers.values())
        return len(self._subscribers.get(session_id, ()))

    async def _position(self, subscription: Subscription, after: int | None) -> None:
        """Replay from `after`, or note where the log stands for later gap filling.

        If the log cannot be read now (Redis away), the subscription still starts:
        the listener fills its gap from `high_water` once it reconnects.
        """
        try:
            if after is None:
                subscription.high_water = await self.head(subscription.session_id)
            else:
                await self._replay_into(subscription, after)
        except Exception as exc:
            logger.warning("replay log unavailable at subscribe (%s); resuming later", exc)
            subscription.high_water = after or 0
            subscription.position_known = after is not None

    async def _replay_into(self, subscription: Subscription, after: int) -> None:
        read = await self.read_log(subscription.session_id, after)
        subscription.high_water = max(subscription.high_water, after)
        if not read.complete:
            self.stats["resyncs"] += 1
            subscription.replay([self._resync_event(subscription.session_id, after, read)])
        subscription.replay(read.events)
        self.stats["replayed"] += len(read.events)

    async def _fill_gap(self, subscription: Subscription) -> None:
        """After live delivery broke off (a reconnect, a moved slot): what the log
        holds past what the subscriber has, or `resync_required` where that cannot
        be known or the log no longer reaches back."""
        session_id = subscription.session_id
        if not subscription.position_known:
            # Where it stood is unknown (the log was unreadable when it subscribed):
            # it must refetch, then continue from the head.
            head = LogRead([], complete=False, head=await self.head(session_id))
            subscription.push(self._resync_event(session_id, 0, head))
            subscription.position_known = True
            self.stats["resyncs"] += 1
            return
        read = await self.read_log(session_id, subscription.high_water)
        if not read.complete:
            self.stats["resyncs"] += 1
            subscription.push(self._resync_event(session_id, subscription.high_water, read))
        for event in read.events:
            subscription.push(event)

    def _resync_event(self, session_id: UUID, after: int, read: LogRead) -> Event:
        """Tells one subscriber its cursor cannot be resumed. Its own id is where the
        events that follow it continue from, so it is never taken for a duplicate."""
        return Event(
            id=read.resume_point,
            type=RESYNC_REQUIRED,
            session_id=session_id,
            app="",
            ts=utc_now(),
            data={
                "code": "CURSOR_EXPIRED",
                "after": str(after),
                "message": "events after this cursor are no longer available; "
                "refetch the session state and resume from the event that follows",
            },
        )

    # -- delivery ------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Hand an event to this process's subscribers of its session."""
        for subscription in self._subscribers.get(event.session_id, ()):
            already = subscription.overflowed
            if subscription.push(event):
                self.stats["delivered"] += 1
            elif not already and subscription.overflowed:
                self.stats["overflows"] += 1


def log_read(events: list[Event], after: int, head: int) -> LogRead:
    """Judge whether `events` (ids > `after`, ascending) account for everything.

    Ids are contiguous within a log, so nothing is missing when the first event
    follows the cursor directly, or when there is nothing new and the head is the
    cursor itself. A cursor beyond the head comes from a log that was lost.
    """
    if events:
        return LogRead(events, complete=events[0].id == after + 1, head=head)
    return LogRead(events, complete=head == after, head=head)
