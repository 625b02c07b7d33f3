"""`memory://`: the bus inside one process, with a bounded replay ring per session."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from runtime.events.bus import EventBus, LogRead, log_read
from runtime.events.envelope import Event, first_cursor, utc_now


@dataclass
class _SessionLog:
    head: int
    ring: deque[Event] = field(default_factory=deque)


class MemoryEventBus(EventBus):
    def __init__(self, queue_limit: int, replay_limit: int, max_logs: int = 10_000) -> None:
        super().__init__(queue_limit, replay_limit)
        self._max_logs = max_logs
        self._logs: OrderedDict[UUID, _SessionLog] = OrderedDict()

    async def publish(
        self,
        session_id: UUID,
        app: str,
        event_type: str,
        data: dict[str, Any],
        ttl: int = 0,
        wait: bool = True,
    ) -> Event:
        log = self._logs.get(session_id)
        if log is None:
            log = _SessionLog(head=first_cursor(), ring=deque(maxlen=self.replay_limit))
            self._logs[session_id] = log
            while len(self._logs) > self._max_logs:
                self._logs.popitem(last=False)
        self._logs.move_to_end(session_id)
        log.head += 1
        event = Event(log.head, event_type, session_id, app, utc_now(), data)
        log.ring.append(event)
        self.stats["published"] += 1
        self.deliver(event)
        return event

    async def read_log(self, session_id: UUID, after: int) -> LogRead:
        log = self._logs.get(session_id)
        if log is None:
            return log_read([], after, 0)
        return log_read([e for e in log.ring if e.id > after], after, log.head)

    async def head(self, session_id: UUID) -> int:
        log = self._logs.get(session_id)
        return 0 if log is None else log.head

    async def forget_many(self, session_ids: list[UUID]) -> None:
        for session_id in session_ids:
            self._logs.pop(session_id, None)
