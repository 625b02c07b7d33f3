"""Runs each session's turns one at a time, in arrival order, from the stored queue.

While a session has work here it has one worker task, which holds the session's
turn lease (so turns of one session never overlap across replicas) and claims the
stored turns one by one (runtime/turns/queue.py); each turn runs as its own task
so an interrupt can cancel it without killing the worker. The in-process part is
only a cache of the stored queue: how many turns were accepted here and wait (for
the queue limit) and whether a worker runs. `is_processing` is set when a turn is
accepted and cleared when the queue drains; both happen under the session's lock
so a turn accepted just as the worker finishes is never stranded. The after-turn
job (titling) runs before processing ends, so a client that stops listening when
it does has already seen the title.

An interrupt may reach any replica. The one that runs the session's turns
listens, while it holds the lease, to the session's events for an
`interrupt_requested` (published by `Turns.interrupt` elsewhere, after it
cancelled the queued turns in the store) and cancels its running turn. It
subscribes before it claims a turn, so a request published after a turn was
claimed is always heard; one published earlier found the turn still queued and
cancelled it in the store.

A shutdown cancels the running turns without recording them as ended: they stay
`running`, their queues stay stored, and the next holder of each session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from runtime.errors import QueueFull
from runtime.events import Event, EventBus
from runtime.events.envelope import INTERRUPT_REQUESTED
from runtime.leases import Leases
from runtime.records import TurnStatus
from runtime.sessions import SessionHost
from runtime.telemetry import tracing
from runtime.telemetry.context import app_name, new_request_id, request_id, turn_origins
from runtime.telemetry.context import session_id as session_var
from runtime.telemetry.metrics import Metrics
from runtime.turns.queue import TurnQueue
from runtime.turns.runner import Turn, TurnRunner

logger = logging.getLogger(__name__)

AFTER_TURN_TIMEOUT = 15.0
LEASE_POLL = 0.25


def turn_lease(session_id: UUID) -> str:
    return f"turn:{session_id}"


@dataclass
class _SessionWork:
    waiting: int = 0  # accepted here, not claimed yet
    worker: asyncio.Task[None] | None = None
    current: asyncio.Task[TurnStatus] | None = None


class TurnScheduler:
    def __init__(
        self,
        host: SessionHost,
        queue: TurnQueue,
        runner: TurnRunner,
        processing: Callable[[UUID, bool], Awaitable[None]],
        after_turn: Callable[[UUID], Awaitable[None]],
        leases: Leases,
        lease_seconds: float,
        events: EventBus,
        metrics: Metrics | None = None,
    ) -> None:
        self._host = host
        self._events = events
        self._queue = queue
        self._leases = leases
        self._lease_seconds = lease_seconds
        self._runner = runner
        self._processing = processing
        self._after_turn = after_turn
        self._work: dict[UUID, _SessionWork] = {}
        self._metrics = metrics or Metrics()

    def check_capacity(self, session_id: UUID, limit: int) -> None:
        work = self._work.get(session_id)
        if work is not None and work.waiting >= limit:
            raise QueueFull(f"{limit} messages are already waiting for this session; try later")

    def submit(self, session_id: UUID, limit: int) -> None:
        """Count a turn just stored as queued. The caller holds the session lock, has
        stored the turn and, if the session was idle (`is_busy` false), marked it
        processing."""
        self.check_capacity(session_id, limit)
        self._work_for(session_id).waiting += 1

    def resume(self, session_id: UUID) -> None:
        """Run what is stored for the session (after its holder died)."""
        self._work_for(session_id)

    def is_busy(self, session_id: UUID) -> bool:
        return session_id in self._work

    @property
    def busy_sessions(self) -> int:
        """Sessions with turns queued or running here."""
        return len(self._work)

    @property
    def waiting_turns(self) -> int:
        """Turns accepted here and not claimed yet."""
        return sum(work.waiting for work in self._work.values())

    async def interrupt(self, session_id: UUID) -> bool:
        """Cancel the running turn and drop the queued ones; False if idle here."""
        await self._queue.cancel_queued(session_id)
        work = self._work.get(session_id)
        if work is None:
            return False
        self._stop(work)
        if work.worker is not None:
            await asyncio.wait({work.worker})
        return True

    @staticmethod
    def _stop(work: _SessionWork) -> None:
        work.waiting = 0
        if work.current is not None:
            work.current.cancel()

    def _work_for(self, session_id: UUID) -> _SessionWork:
        work = self._work.setdefault(session_id, _SessionWork())
        if work.worker is None:
            work.worker = asyncio.create_task(self._drain(session_id, work))
        return work

    async def _drain(self, session_id: UUID, work: _SessionWork) -> None:
        """Run the queue while holding the session's turn lease, so turns of one
        session never overlap across replicas; a holder that dies lets it expire."""
        lease = turn_lease(session_id)
        while not await self._leases.acquire(lease, self._lease_seconds):  # noqa: ASYNC110
            await asyncio.sleep(LEASE_POLL)  # another replica runs it; a lease is polled
        renewing = asyncio.create_task(self._renew(lease))
        try:
            async with self._events.subscribe(session_id) as events:
                obeying = asyncio.create_task(self._obey_stops(work, events))
                try:
                    await self._run_queue(session_id, work)
                finally:
                    obeying.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await obeying
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(Exception):
                await asyncio.shield(self._leases.release(lease))

    async def _obey_stops(self, work: _SessionWork, events: AsyncIterator[Event]) -> None:
        """Stop the running turn when another replica asks (its request cancelled
        the queued turns in the store already). A stream that ends (overflow, bus
        gone) just stops listening: interrupts then work from this replica only."""
        with contextlib.suppress(Exception):
            async for event in events:
                if event.type == INTERRUPT_REQUESTED:
                    self._stop(work)

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
                turn = await self._queue.next(session_id)
                if turn is None:
                    del self._work[session_id]
                    await self._processing(session_id, False)
                    return
                work.waiting = max(0, work.waiting - 1)
            # Another replica may have ended processing while this one waited for
            # the lease with a turn it had accepted.
            await self._processing(session_id, True)
            parent = self._continue_request(turn)
            work.current = asyncio.create_task(self._run(turn, parent))
            await asyncio.wait({work.current})
            status = self._outcome(session_id, work.current)
            work.current = None
            self._metrics.turns_finished.labels(status.value).inc()
            logger.info("turn %d %s", turn.id, status.value, extra={"turn": turn.id})
            await self._queue.finish(turn.id, status, self._runner.usage.pop(turn.id, None))
            if status is not TurnStatus.INTERRUPTED:
                await self._after(session_id)

    @staticmethod
    def _continue_request(turn: Turn) -> object:
        """Log lines and spans of the turn (and its after-turn job) carry the id of
        the request that queued it (a new one if it was queued elsewhere); returns
        that request's trace context, the turn span's parent."""
        origin = turn_origins.take(turn.question.id)
        request_id.set(origin.request_id if origin and origin.request_id else new_request_id())
        session_var.set(str(turn.session_id))
        app_name.set(turn.app)
        return origin.trace_context if origin else None

    async def _run(self, turn: Turn, parent: object) -> TurnStatus:
        running = self._metrics.turns_running
        running.inc()
        logger.debug("turn %d started", turn.id, extra={"turn": turn.id})
        try:
            attributes = {"confab.app": turn.app, "confab.session_id": str(turn.session_id)}
            with tracing.span("turn", attributes, parent=parent):
                return await self._runner.run(turn)
        finally:
            running.dec()

    @staticmethod
    def _outcome(session_id: UUID, task: asyncio.Task[TurnStatus]) -> TurnStatus:
        if task.cancelled():
            return TurnStatus.INTERRUPTED
        error = task.exception()
        if error is not None:
            logger.error("turn of session %s crashed", session_id, exc_info=error)
            return TurnStatus.FAILED
        return task.result()

    async def _after(self, session_id: UUID) -> None:
        try:
            async with asyncio.timeout(AFTER_TURN_TIMEOUT):
                await self._after_turn(session_id)
        except Exception:
            logger.exception("after-turn job of session %s failed", session_id)

    async def shutdown(self) -> None:
        self._runner.stopping = True
        tasks = [t for w in self._work.values() for t in (w.current, w.worker) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
