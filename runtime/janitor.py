"""The janitor: a periodic sweep that deletes expired sessions (in bounded batches,
each its own short transaction), runs the other sweeps it is given (expired client
secrets), and evicts idle sessions from the cache.

With several replicas, a lease makes sure only one sweeps at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from runtime.events import EventBus
from runtime.events.envelope import utc_now
from runtime.leases import Leases
from runtime.periodic import Periodic
from runtime.sessions import SessionHost
from runtime.store import SessionStore
from settings import Settings

logger = logging.getLogger(__name__)

LEASE = "janitor"


class Janitor:
    def __init__(
        self,
        store: SessionStore,
        host: SessionHost,
        events: EventBus,
        leases: Leases,
        settings: Settings,
        sweeps: Sequence[Callable[[int], Awaitable[int]]] = (),
    ) -> None:
        """`sweeps`: more jobs for the sweep, each deleting at most a batch of
        expired rows (its argument) and returning how many it deleted."""
        self._store = store
        self._sweeps = tuple(sweeps)
        self._host = host
        self._events = events
        self._leases = leases
        self._interval = settings.janitor_interval
        self._batch = settings.janitor_batch
        self._idle = settings.cache_idle_seconds
        self.periodic = Periodic("janitor", self._interval, self.sweep, first=False)
        self.swept = 0
        self.sweeps = 0  # sweeps this replica ran (holding the lease)

    def start(self) -> None:
        self.periodic.start()

    async def stop(self) -> None:
        await self.periodic.stop()

    async def sweep(self) -> int:
        """One sweep; returns how many expired sessions it deleted (0 if another
        replica holds the sweep)."""
        self._host.evict_idle(self._idle)
        if not await self._leases.acquire(LEASE, self._interval * 2 + 30):
            return 0
        deleted = 0
        try:
            while True:
                expired = await self._store.expired_session_ids(utc_now(), self._batch)
                if not expired:
                    break
                deleted += await self._store.delete_sessions(expired)
                for session_id in expired:
                    self._host.unload(session_id)
                await self._events.forget_many(expired)
                await self._leases.renew(LEASE, self._interval * 2 + 30)
                await asyncio.sleep(0)  # let requests run between batches
            for job in self._sweeps:
                while await job(self._batch) >= self._batch:
                    await self._leases.renew(LEASE, self._interval * 2 + 30)
                    await asyncio.sleep(0)
        finally:
            await self._leases.release(LEASE)
        if deleted:
            logger.info("janitor deleted %d expired sessions", deleted)
        self.swept += deleted
        self.sweeps += 1
        return deleted
