"""SessionHost: three-tier session loading (in-process cache, then store, then create).

Reads never create; only `create` does. The cache is a bounded LRU of immutable
records, so readers share them without copying. Every write goes through the host,
which stores first and then refreshes its cached copy.
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
from runtime.records import JSONObject, Page, SessionRecord, SystemEventRecord
from runtime.store import SessionQuery, SessionStore

logger = logging.getLogger(__name__)


class SessionHost:
    def __init__(
        self, store: SessionStore, capacity: int, coherence: Coherence | None = None
    ) -> None:
        self._store = store
        self._coherence: Coherence = coherence or LocalCoherence()
        self._capacity = max(1, capacity)
        # Least recently used first; each entry remembers when it was last used.
        self._cache: OrderedDict[UUID, tuple[SessionRecord, float]] = OrderedDict()
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
        await self._written(record)
        return record, created

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
            await self._written(record)
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

    async def refresh(self, record: SessionRecord) -> None:
        """Take a newer copy that a store call returned (e.g. after a message append)."""
        current = self._cache.get(record.id)
        if current is None or current[0].version <= record.version:
            await self._written(record)

    async def _written(self, record: SessionRecord) -> None:
        """Cache what was just stored and tell other replicas its version."""
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
            evicted += 1
        return evicted

    def health(self) -> dict[str, int]:
        """What the metrics and the replica heartbeat read: how many sessions are cached."""
        return {"cached_sessions": len(self._cache)}

    async def shutdown(self) -> None:
        self._cache.clear()
        await self._coherence.aclose()

    def _remember(self, record: SessionRecord) -> None:
        self._cache[record.id] = (record, time.monotonic())
        self._cache.move_to_end(record.id)
        while len(self._cache) > self._capacity:
            evicted, _ = self._cache.popitem(last=False)
            logger.debug("evicted session %s from the cache", evicted)
