"""Rate limits per app and per client, counted across replicas.

An app's `[apps.NAME.limits]` set how many requests one client may make per minute
(REST requests and GraphQL operations), how many the whole app may take, how many
bytes of chat messages one client may send per minute, and how many of its
sessions may be answering at once. A client is the peer address (what
`FORWARDED_ALLOW_IPS` lets a trusted proxy rewrite), the same identity the key
throttle counts: keys are shared by every user of an app's widget, and a
client-chosen id would be free to change.

Counts live in Redis when the event bus is Redis (every replica sees one count) and
in the process on the embedded default. A window is a fixed minute started by a
client's first request; a refused request is not counted, and says when the window
ends (`RateLimited.retry_after`). Concurrent turns are slots: a session takes one
when a message is accepted and gives it back when it stops processing; a slot
whose replica died expires on its own.

Each Redis command touches one key, so the limits work on a Redis Cluster too.
When Redis cannot answer, limits let requests through (logged): an outage of the
counter store must not take the API down with it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Protocol, TypeVar
from uuid import UUID

from runtime.announcer import Announcer
from runtime.apps import AppRegistry, Caller
from runtime.errors import InvalidInput, RateLimited
from runtime.events.envelope import SYSTEM_NOTICE
from runtime.records import SessionRecord

logger = logging.getLogger(__name__)
T = TypeVar("T")

WINDOW_SECONDS = 60.0
# A slot outlives any turn (model timeout x tool rounds); a dead replica's frees itself.
SLOT_SECONDS = 900.0
UNKNOWN_CLIENT = "unknown"


class CountersUnavailable(Exception):
    """The counter store could not answer (a shared store raises this for its own
    errors, so the limiter needs no Redis client to recognise them)."""


class Counters(Protocol):
    async def take(self, key: str, amount: int, limit: int, window: float) -> float:
        """Count `amount` against `limit` in the key's window: 0 if counted, else the
        seconds until the window ends (and nothing counted)."""
        ...

    async def hold(self, key: str, member: str, limit: int, seconds: float) -> float:
        """Give `member` one of `limit` slots (kept if it has one): 0, or the seconds
        until a slot frees."""
        ...

    async def release(self, key: str, member: str) -> None: ...

    async def remember(self, key: str, value: str, seconds: float) -> None: ...

    async def recall(self, key: str) -> str | None:
        """What `remember` stored (and forget it)."""
        ...

    async def aclose(self) -> None: ...


class MemoryCounters:
    """One process's counts (the embedded default): bounded, oldest dropped first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._slots: dict[str, dict[str, float]] = {}
        self._notes: dict[str, tuple[str, float]] = {}

    async def take(self, key: str, amount: int, limit: int, window: float) -> float:
        now = time.monotonic()
        count, ends = self._counts.get(key, (0, now + window))
        if ends <= now:
            count, ends = 0, now + window
        if count + amount > limit:
            return ends - now
        self._counts[key] = (count + amount, ends)
        self._counts.move_to_end(key)
        while len(self._counts) > self._capacity:
            self._counts.popitem(last=False)
        return 0.0

    async def hold(self, key: str, member: str, limit: int, seconds: float) -> float:
        now = time.monotonic()
        slots = {m: until for m, until in self._slots.get(key, {}).items() if until > now}
        if member in slots or len(slots) < limit:
            slots[member] = now + seconds
            self._slots[key] = slots
            return 0.0
        self._slots[key] = slots
        return max(0.001, min(slots.values()) - now)

    async def release(self, key: str, member: str) -> None:
        slots = self._slots.get(key)
        if slots is not None:
            slots.pop(member, None)
            if not slots:
                del self._slots[key]

    async def remember(self, key: str, value: str, seconds: float) -> None:
        self._notes[key] = (value, time.monotonic() + seconds)
        if len(self._notes) > self._capacity:
            now = time.monotonic()
            self._notes = {k: v for k, v in self._notes.items() if v[1] > now}

    async def recall(self, key: str) -> str | None:
        found = self._notes.pop(key, None)
        return None if found is None or found[1] <= time.monotonic() else found[0]

    async def aclose(self) -> None:
        return None


class RateLimiter:
    """The app's limits, applied to a caller. Each check raises `RateLimited` (with
    the seconds to wait) or lets the caller through; unlimited apps cost nothing."""

    def __init__(self, apps: AppRegistry, counters: Counters, announcer: Announcer) -> None:
        self._apps = apps
        self._counters = counters
        self._announcer = announcer

    async def request(self, caller: Caller) -> None:
        """One REST request or GraphQL operation."""
        limits = self._apps.get(caller.app).limits
        if limits.app_requests_per_minute:
            await self._take(
                f"confab:rl:{{{caller.app}}}:requests",
                1,
                limits.app_requests_per_minute,
                f"app {caller.app!r} takes at most {limits.app_requests_per_minute} "
                "requests per minute",
            )
        if limits.requests_per_minute:
            await self._take(
                _client_key(caller, "requests"),
                1,
                limits.requests_per_minute,
                f"at most {limits.requests_per_minute} requests per minute per client",
            )

    async def message(self, caller: Caller, size: int) -> None:
        """A chat message of `size` bytes."""
        limit = self._apps.get(caller.app).limits.message_bytes_per_minute
        if limit and size > limit:
            raise InvalidInput(
                "message", f"is {size} bytes; this app takes at most {limit} per minute"
            )
        if limit:
            await self._take(
                _client_key(caller, "bytes"),
                size,
                limit,
                f"at most {limit} bytes of messages per minute per client",
            )

    async def turn_accepted(self, caller: Caller, session_id: UUID) -> None:
        """The session (now) answers for this client: it holds one of the client's
        slots until it stops processing (`turn_ended`)."""
        limit = self._apps.get(caller.app).limits.concurrent_turns
        if not limit:
            return
        slots = _client_key(caller, "turns")
        wait = await self._counted(
            self._counters.hold(slots, str(session_id), limit, SLOT_SECONDS), 0.0
        )
        if wait:
            raise RateLimited(
                f"at most {limit} sessions per client may be answering at once; "
                "wait for one to finish",
                wait,
            )
        await self._counted(
            self._counters.remember(_slot_note(session_id), slots, SLOT_SECONDS), None
        )

    async def turn_ended(self, app: str, session_id: UUID) -> None:
        """The session stopped processing: its slot (if it holds one) is free."""
        if not self._apps.get(app).limits.concurrent_turns:
            return
        slots = await self._counted(self._counters.recall(_slot_note(session_id)), None)
        if slots is not None:
            await self._counted(self._counters.release(slots, str(session_id)), None)

    async def slowed(self, record: SessionRecord, refused: RateLimited) -> None:
        """Tell the session's live UI why a request about it was refused (a
        `system_notice`), at most once a window so refusals cannot flood it."""
        first = await self._counted(
            self._counters.take(f"confab:rl:{{{record.id}}}:notice", 1, 1, WINDOW_SECONDS), 1.0
        )
        if first == 0:
            await self._announcer.publish(
                record,
                SYSTEM_NOTICE,
                {
                    "message": f"{refused.message}; try again in {refused.retry_after_seconds} s",
                    "code": refused.code,
                    "retry_after": refused.retry_after_seconds,
                },
            )

    async def aclose(self) -> None:
        await self._counters.aclose()

    async def _take(self, key: str, amount: int, limit: int, reason: str) -> None:
        wait = await self._counted(self._counters.take(key, amount, limit, WINDOW_SECONDS), 0.0)
        if wait:
            raise RateLimited(f"rate limited: {reason}", wait)

    @staticmethod
    async def _counted(call: Awaitable[T], if_unavailable: T) -> T:
        try:
            return await call
        except (CountersUnavailable, OSError, TimeoutError) as exc:
            logger.warning("rate limits not counted: Redis unavailable (%s)", type(exc).__name__)
            return if_unavailable


def _client_key(caller: Caller, what: str) -> str:
    client = caller.client or UNKNOWN_CLIENT
    return f"confab:rl:{{{caller.app}:{client}}}:{what}"


def _slot_note(session_id: UUID) -> str:
    """Which client's slot a session holds (read back when it stops processing)."""
    return f"confab:rl:slot:{{{session_id}}}"
