"""Runs each session's turns one at a time, in arrival order.

A session has a bounded queue and, while it has work, one worker task. Each turn
runs as its own task so an interrupt can cancel it without killing the worker.
`is_processing` is set when a turn is accepted and cleared when the queue drains;
both happen under the session's lock so a turn accepted just as the worker
finishes is never stranded. The after-turn job (titling) runs before processing
ends, so a client that stops listening when it does has already seen the title.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from uuid import UUID

from runtime.errors import QueueFull
from runtime.leases import Leases
from runtime.sessions import SessionHost
from runtime.turns.runner import Turn, TurnRunner

logger = logging.getLogger(__name__)

AFTER_TURN_TIMEOUT = 15.0
LEASE_POLL = 0.25


def turn_lease(session_id: UUID) -> str:
    return f"turn:{session_id}"


@dataclass
class _SessionWork:
    queue: deque[Turn] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    current: asyncio.Task[None] | None = None


class TurnScheduler:
    def __init__(
        self,
        host: SessionHost,
        runner: TurnRunner,
        end_processing: Callable[[UUID], Awaitable[None]],
        after_turn: Callable[[UUID], Awaitable[None]],
        leases: Leases,
        lease_seconds: float,
    ) -> None:
        self._host = host
        self._leases = leases
        self._lease_seconds = lease_seconds
        self._runner = runner
        self._end_processing = end_processing
        self._after_turn = after_turn
        self._work: dict[UUID, _SessionWork] = {}

    def check_capacity(self, session_id: UUID, limit: int) -> None:
        work = self._work.get(session_id)
        if work is not None and len(work.queue) >= limit:
            raise QueueFull(f"{limit} messages are already waiting for this session; try later")

    def submit(self, turn: Turn, limit: int) -> None:
        """Queue the turn. The caller holds the session lock, has stored the message
        and, if the session was idle (`is_busy` false), marked it processing."""
        self.check_capacity(turn.session_id, limit)
        work = self._work.setdefault(turn.session_id, _SessionWork())
        work.queue.append(turn)
        if work.worker is None:
            work.worker = asyncio.create_task(self._drain(turn.session_id, work))

    def is_busy(self, session_id: UUID) -> bool:
        return session_id in self._work

    async def interrupt(self, session_id: UUID) -> bool:
        """Cancel the running turn and drop the queued ones; False if idle."""
        work = self._work.get(session_id)
        if work is None:
            return False
        work.queue.clear()
        if work.current is not None:
            work.current.cancel()
        if work.worker is not None:
            await asyncio.wait({work.worker})
        return True

    async def _drain(self, session_id: UUID, work: _SessionWork) -> None:
        """Run the queue while holding the session's turn lease, so turns of one
        session never overlap across replicas; a holder that dies lets it expire."""
        lease = turn_lease(session_id)
        while not await self._leases.acquire(lease, self._lease_seconds):  # noqa: ASYNC110
            await asyncio.sleep(LEASE_POLL)  # another replica runs it; a lease is polled
        renewing = asyncio.create_task(self._renew(lease))
        try:
            await self._run_queue(session_id, work)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(Exception):
                await asyncio.shield(self._leases.release(lease))

    async def _renew(self, lease: str) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await self._leases.renew(lease, self._lease_seconds)
            except Exception as exc:
                logger.warning("could not renew %s: %s", lease, exc)

    async def _run_queue(self, session_id: UUID, work: _SessionWork) -> None:
        while True:
            async with self._host.lock(session_id):
                if not work.queue:
                    del self._work[session_id]
                    await self._end_processing(session_id)
                    return
                turn = work.queue.popleft()
            work.current = asyncio.create_task(self._runner.run(turn))
            await asyncio.wait({work.current})
            if not work.current.cancelled() and work.current.exception() is not None:
                logger.error(
                    "turn of session %s crashed", session_id, exc_info=work.current.exception()
                )
            interrupted = work.current.cancelled()
            work.current = None
            if not interrupted:
                await self._after(session_id)

    async def _after(self, session_id: UUID) -> None:
        try:
            async with asyncio.timeout(AFTER_TURN_TIMEOUT):
                await self._after_turn(session_id)
        except Exception:
            logger.exception("after-turn job of session %s failed", session_id)

    async def shutdown(self) -> None:
        for work in list(self._work.values()):
            work.queue.clear()
            for task in (work.current, work.worker):
                if task is not None:
                    task.cancel()
        tasks = [t for w in self._work.values() for t in (w.current, w.worker) if t is not None]
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
