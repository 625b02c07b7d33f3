"""SessionHost: three-tier session loading (in-process cache, then store, then create).

Reads never create; only `create` does. The cache is a bounded LRU of immutable
records, so readers share them without copying. Every write goes through the host,
which stores first and then refreshes its cached copy.

Beside a cached session the host keeps its primary thread's newest messages (a
`MessageTail`, bounded in total by `tail_budget` messages), tagged with the session
version they were read at. Every message append bumps the version, so a tail whose
version is the cached session's is exact, and a cached, unchanged session's recent
messages cost no database read. A write this process makes moves the tail along
(adding the message it appended) when the write's version is the very next one;
any other version difference (a write on another replica) drops it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from uuid import UUID
from weakref import WeakValueDictionary

from runtime.coherence import Coherence, LocalCoherence
from runtime.records import JSONObject, MessageRecord, Page, SessionRecord, SystemEventRecord
from runtime.store import MessageTail, SessionQuery, SessionStore

logger = logging.getLogger(__name__)


# A tail read from the store holds at least this many messages (GraphQL's default page).
TAIL_MIN = 50


class SessionHost:
    def __init__(
        self,
        store: SessionStore,
        capacity: int,
        coherence: Coherence | None = None,
        tail_budget: int = 50_000,
    ) -> None:
        self._store = store
        self._coherence: Coherence = coherence or LocalCoherence()
        self._capacity = max(1, capacity)
        # Least recently used first; each entry remembers when it was last used.
        self._cache: OrderedDict[UUID, tuple[SessionRecord, float]] = OrderedDict()
        # Least recently used first, at most `tail_budget` messages in all.
        self._tails: OrderedDict[UUID, MessageTail] = OrderedDict()
        self._tail_budget = tail_budget
        self._tail_messages = 0
        self._locks: WeakValueDictionary[UUID, asyncio.Lock] = WeakValueDictionary()

    # -- loading -------------------------------------------------------------

    async def get(self, session_id: UUID) -> SessionRecord | None:
        """Tier 1 then tier 2; None when the session does not exist (never creates)."""
        cached = self._cache.get(session_id)
        if cached is not None and await self._coherence.is_current(session_id, cached[0].version):
            self._cache[session_id] = (cached[0], time.monotonic())
            self._cache.move_to_end(session_id)
            return cached[0]
        return await self.load(session_id)

    async def load(self, session_id: UUID) -> SessionRecord | None:
        """Read from the store into the cache, replacing any cached copy."""
        record = await self._store.get_session(session_id)
        if record is None:
            self.unload(session_id)
        else:
            self._remember(record)
            await self._coherence.written(session_id, record.version)
        return record

    async def create(
        self, session_id: UUID, app: str, fields: Mapping[str, Any] | None = None
    ) -> tuple[SessionRecord, bool]:
        """Tier 3: create (with its primary thread); an existing id is returned as is."""
        record, created = await self._store.create_session(session_id, app, fields or {})
        await self.refresh(record)
        if created:  # a new session has no messages: nothing to read
            self._keep_tail(session_id, MessageTail(record.version, (), True, TAIL_MIN))
        return record, created

    async def recent_messages(self, session: SessionRecord, limit: int) -> Page[MessageRecord]:
        """The last `limit` messages of the session's primary thread, as
        `MessageWindow(limit, from_end=True)` pages them: from the tail kept with the
        cached session when it is of the session's current version, else one read
        (which then becomes the tail, if the session did not change meanwhile)."""
        if self.has_exact_tail(session.id, session.version, limit):
            self._tails.move_to_end(session.id)
            return self._tails[session.id].page(limit)
        tail = await self._store.message_tail(session.id, max(limit, TAIL_MIN))
        if tail is None:
            return Page(items=[], has_next=False, has_previous=False)
        cached = self._cache.get(session.id)
        if cached is not None and cached[0].version == tail.version:
            self._keep_tail(session.id, tail)
        return tail.page(limit)

    # -- writes --------------------------------------------------------------

    async def update(
        self,
        session_id: UUID,
        fields: Mapping[str, Any],
        expect: Mapping[str, Any] | None = None,
    ) -> SessionRecord | None:
        """Store `fields` (if the row matches `expect`) and cache the result."""
        record = await self._store.update_session(session_id, fields, expect)
        if record is not None:
            await self.refresh(record)
        elif expect is None:
            self.unload(session_id)
        return record

    async def add_system_event(
        self, session_id: UUID, kind: str, payload: JSONObject
    ) -> SystemEventRecord:
        """Store a system event; the session's `last_event_id` moves with it."""
        event, record = await self._store.add_system_event(session_id, kind, payload)
        if record is not None:
            await self.refresh(record)
        return event

    async def delete(self, session_id: UUID) -> bool:
        deleted = await self._store.delete_session(session_id)
        self.unload(session_id)
        await self._coherence.deleted(session_id)
        return deleted

    async def refresh(self, record: SessionRecord, appended: MessageRecord | None = None) -> None:
        """Take a copy that a store call returned (`appended`: the message that call
        added, if it was an append), unless a concurrent write already cached a newer
        one, and tell other replicas its version."""
        current = self._cache.get(record.id)
        if current is None or current[0].version <= record.version:
            self._advance_tail(record, appended)
            self._remember(record)
        await self._coherence.written(record.id, record.version)

    async def list_sessions(self, query: SessionQuery) -> Page[SessionRecord]:
        return await self._store.list_sessions(query)

    # -- cache and locks -------------------------------------------------------

    def lock(self, session_id: UUID) -> asyncio.Lock:
        """The session's lock in this process: held for read-modify-write sequences."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[session_id] = lock
        return lock

    def unload(self, session_id: UUID) -> None:
        self._cache.pop(session_id, None)
        self._drop_tail(session_id)

    def cached_version(self, session_id: UUID) -> int | None:
        """The version of the cached copy (no coherence check), or None."""
        cached = self._cache.get(session_id)
        return None if cached is None else cached[0].version

    def has_exact_tail(self, session_id: UUID, version: int, limit: int) -> bool:
        """Whether the session's last `limit` messages at `version` are kept."""
        tail = self._tails.get(session_id)
        return tail is not None and tail.version == version and tail.covers(limit)

    def is_loaded(self, session_id: UUID) -> bool:
        return session_id in self._cache

    def loaded_ids(self) -> list[UUID]:
        return list(self._cache)

    def evict_idle(self, max_idle: float) -> int:
        """Drop sessions unused for `max_idle` seconds (they reload on demand)."""
        cutoff = time.monotonic() - max_idle
        evicted = 0
        while self._cache:
            session_id, (_, used) = next(iter(self._cache.items()))
            if used > cutoff:
                break
            del self._cache[session_id]
            self._drop_tail(session_id)
            evicted += 1
        return evicted

    def health(self) -> dict[str, int]:
        """What the metrics and the replica heartbeat read: how many sessions are cached."""
        return {
            "cached_sessions": len(self._cache),
            "cached_messages": self._tail_messages,
            "sole_writer": int(self._coherence.alone()),
        }

    async def start(self) -> None:
        await self._coherence.start()

    async def shutdown(self) -> None:
        self._cache.clear()
        self._tails.clear()
        self._tail_messages = 0
        await self._coherence.aclose()

    def _remember(self, record: SessionRecord) -> None:
        self._cache[record.id] = (record, time.monotonic())
        self._cache.move_to_end(record.id)
        while len(self._cache) > self._capacity:
            evicted, _ = self._cache.popitem(last=False)
            self._drop_tail(evicted)
            logger.debug("evicted session %s from the cache", evicted)

    def _advance_tail(self, record: SessionRecord, appended: MessageRecord | None) -> None:
        """Move the tail to the version this process just wrote. Only from the version
        right before it: then this write is the only change between the two."""
        tail = self._tails.get(record.id)
        if tail is None or tail.version == record.version:
            return
        if tail.version != record.version - 1:
            self._drop_tail(record.id)
            return
        if appended is not None and appended.thread_id != record.id:
            appended = None  # another thread's message: the primary tail is unchanged
        self._keep_tail(record.id, tail.after(record.version, appended))

    def _keep_tail(self, session_id: UUID, tail: MessageTail) -> None:
        self._drop_tail(session_id)
        if len(tail.messages) > self._tail_budget:
            return
        self._tails[session_id] = tail
        self._tail_messages += len(tail.messages)
        while self._tail_messages > self._tail_budget:
            _, oldest = self._tails.popitem(last=False)
            self._tail_messages -= len(oldest.messages)

    def _drop_tail(self, session_id: UUID) -> None:
        tail = self._tails.pop(session_id, None)
        if tail is not None:
            self._tail_messages -= len(tail.messages)
