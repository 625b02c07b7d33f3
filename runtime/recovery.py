"""Crash recovery: the turns of a process that died are answered elsewhere.

A replica runs a session's turns only while it holds the session's turn lease,
renewed every third of its life. If the process dies, the lease expires; then any
replica (or the restarted process) finds the session still marked processing with
nobody holding its lease, and starts a worker for it: the worker takes the lease
and goes on with the session's stored turns, settling the one that was running
(runtime/turns/queue.py). A session marked processing with no stored turn (written
before turns were stored) gets a system error and stops reporting `isProcessing`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from runtime.announcer import Announcer
from runtime.events.envelope import PROCESSING_CHANGED, utc_now
from runtime.leases import Leases
from runtime.notices import post_notice
from runtime.periodic import Periodic
from runtime.sessions import SessionHost
from runtime.store import SessionStore
from runtime.turns import Turns
from runtime.turns.scheduler import turn_lease

logger = logging.getLogger(__name__)

NOTICE = "The assistant's turn was interrupted: the server running it stopped."
SCAN_LIMIT = 500


class Recovery:
    def __init__(
        self,
        store: SessionStore,
        host: SessionHost,
        turns: Turns,
        leases: Leases,
        announcer: Announcer,
        bound_seconds: float,
    ) -> None:
        self._store = store
        self._host = host
        self._turns = turns
        self._leases = leases
        self._announcer = announcer
        # A lease lives a third of the bound, and is checked every third: a dead
        # holder's turn is recovered within the bound.
        self.lease_seconds = bound_seconds / 3
        self.periodic = Periodic("recovery", self.lease_seconds, self.check, first=True)
        self.recovered = 0

    def start(self) -> None:
        self.periodic.start()

    async def stop(self) -> None:
        await self.periodic.stop()

    async def check(self) -> int:
        """Recover every orphaned turn found now; returns how many."""
        recovered = 0
        quiet_since = utc_now() - timedelta(seconds=self.lease_seconds)
        for session_id in await self._store.processing_session_ids(SCAN_LIMIT):
            if self._turns.is_busy(session_id) or await self._leases.held(turn_lease(session_id)):
                continue
            session = await self._host.load(session_id)
            # Just accepted elsewhere, its worker about to take the lease: not orphaned.
            if session is None or not session.is_processing or session.updated_at > quiet_since:
                continue
            if await self._store.unfinished_turns(session_id, 1):
                self._turns.resume(session_id)
                logger.warning("resuming the orphaned turns of session %s", session_id)
                recovered += 1
                continue
            cleared = await self._host.update(
                session_id, {"is_processing": False}, expect={"is_processing": True}
            )
            if cleared is None:
                continue  # someone else recovered it, or it finished
            await post_notice(self._host, self._announcer, cleared, "error", NOTICE)
            await self._announcer.publish(cleared, PROCESSING_CHANGED, {"is_processing": False})
            logger.warning("recovered the orphaned turn of session %s", session_id)
            recovered += 1
        self.recovered += recovered
        return recovered
