"""One subscriber's view of a session's events: replay, then live, bounded.

Events arrive from two places: the replay log (read once, at subscribe time or after
a reconnect) and live delivery. Both may carry the same event; ids decide, so the
subscriber sees each event once and in order. Live events queue up to a bound; a
subscriber that falls further behind is closed with `SubscriberOverflow` rather
than slowing the publisher or other subscribers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from uuid import UUID

from runtime.errors import ConfabError
from runtime.events.envelope import RESYNC_REQUIRED, Event


class SubscriberOverflow(ConfabError):
    code = "SLOW_CONSUMER"


class Subscription:
    def __init__(self, session_id: UUID, queue_limit: int) -> None:
        self.session_id = session_id
        self._limit = queue_limit
        # Thousands of these sit idle per process: the replay queue exists only
        # while it holds something, and the wake-up is a future made per wait
        # (an empty deque or an asyncio.Event costs about 600 bytes each).
        self._replay: deque[Event] | None = None
        self._live: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._overflowed = False
        self._closed = False
        # Highest id handed to the consumer / highest id queued (for gap filling).
        self.last_id = 0
        self.high_water = 0
        # False when the log could not be read at subscribe time: a later gap fill
        # cannot know what was missed and tells the subscriber to resync.
        self.position_known = True

    def replay(self, events: Iterable[Event]) -> None:
        """Queue events read from the log ahead of anything live."""
        queued = self._replay if self._replay is not None else deque()
        for event in events:
            queued.append(event)
            self.high_water = max(self.high_water, event.id)
        self._replay = queued or None
        self._wake()

    @property
    def overflowed(self) -> bool:
        return self._overflowed

    def push(self, event: Event) -> bool:
        """Live delivery; never blocks. Overflow closes this subscriber. True if
        the event was queued."""
        if self._overflowed or self._closed:
            return False
        if len(self._live) >= self._limit:
            self._overflowed = True
            self._live.clear()
            self._wake()
            return False
        self._live.append(event)
        self.high_water = (
            event.id if event.type == RESYNC_REQUIRED else max(self.high_water, event.id)
        )
        self._wake()
        return True

    def close(self) -> None:
        self._closed = True
        self._wake()

    @property
    def pending(self) -> int:
        return len(self._replay or ()) + len(self._live)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while True:
            event = self._next_ready()
            if event is not None:
                return event
            if self._overflowed:
                raise SubscriberOverflow(
                    f"subscriber fell more than {self._limit} events behind and was closed; "
                    "resubscribe with the last cursor to resume"
                )
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _next_ready(self) -> Event | None:
        replay = self._replay
        if replay is not None:
            event = self._take(replay)
            if not replay:
                self._replay = None
            if event is not None:
                return event
        return self._take(self._live)

    def _take(self, queue: deque[Event]) -> Event | None:
        while queue:
            event = queue.popleft()
            if event.type == RESYNC_REQUIRED:
                # The cursor restarts at the log's head, which may be lower than
                # what came before (a Redis that lost its data restarts ids).
                self.last_id = event.id
                return event
            if event.id > self.last_id:
                self.last_id = event.id
                return event
        return None
