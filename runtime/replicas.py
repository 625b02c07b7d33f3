"""Replicas: each serving process says it is alive, and how busy, on a heartbeat.

Operators' tools (`server.py stats`) read the rows; a row not refreshed for
`STALE_AFTER` heartbeats belongs to a process that died without removing it.
The table is in the database, so the embedded default and any number of
replicas report the same way.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from models import Replica
from runtime.events.envelope import utc_now
from runtime.periodic import Periodic

HEARTBEAT_SECONDS = 10.0
STALE_AFTER = 3  # heartbeats


@dataclass(frozen=True, slots=True)
class Load:
    subscribers: int
    cached_sessions: int
    running_turns: int


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    id: str
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    subscribers: int
    cached_sessions: int
    running_turns: int


class Heartbeat:
    def __init__(self, load: Callable[[], Load], interval: float = HEARTBEAT_SECONDS) -> None:
        self.id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._load = load
        self._started_at = utc_now()
        self.periodic = Periodic("heartbeat", interval, self.beat, first=True)

    def start(self) -> None:
        self.periodic.start()

    async def stop(self) -> None:
        await self.periodic.stop()
        await Replica.filter(id=self.id).delete()

    async def beat(self) -> None:
        load = self._load()
        await Replica.update_or_create(
            id=self.id,
            defaults={
                "host": socket.gethostname()[:255],
                "pid": os.getpid(),
                "started_at": self._started_at,
                "seen_at": utc_now(),
                "subscribers": load.subscribers,
                "cached_sessions": load.cached_sessions,
                "running_turns": load.running_turns,
            },
        )


async def live_replicas(interval: float = HEARTBEAT_SECONDS) -> list[ReplicaInfo]:
    """The replicas whose heartbeat is recent, oldest first."""
    since = utc_now() - timedelta(seconds=interval * STALE_AFTER)
    rows = await Replica.filter(seen_at__gte=since).order_by("started_at")
    return [
        ReplicaInfo(
            id=row.id,
            host=row.host,
            pid=row.pid,
            started_at=row.started_at,
            seen_at=row.seen_at,
            subscribers=row.subscribers,
            cached_sessions=row.cached_sessions,
            running_turns=row.running_turns,
        )
        for row in rows
    ]
