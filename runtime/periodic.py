"""A background job run every N seconds, whose failures are logged and retried.

Stopping never cancels a run midway (a cancelled database transaction can leave
its connection locked): a run in progress gets `STOP_WAIT` seconds to finish,
and only then is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

STOP_WAIT = 5.0


class Periodic:
    def __init__(
        self, name: str, interval: float, job: Callable[[], Awaitable[object]], *, first: bool
    ) -> None:
        """`first`: run once right away (a restarted process has work waiting)."""
        self.name = name
        self.interval = interval
        self._job = job
        self._first = first
        self._task: asyncio.Task[None] | None = None
        self._run_now: asyncio.Future[Any] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"confab-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        current = self._run_now
        if current is not None and not current.done():
            try:
                await asyncio.wait_for(current, STOP_WAIT)
            except TimeoutError:
                logger.warning("%s did not finish within %.0f s; cancelled", self.name, STOP_WAIT)
            except Exception:
                logger.exception("%s failed while stopping", self.name)

    async def _run(self) -> None:
        if not self._first:
            await asyncio.sleep(self.interval)
        while True:
            self._run_now = asyncio.ensure_future(self._job())
            try:
                # Shielded: a stop waits for this run instead of cutting it short.
                await asyncio.shield(self._run_now)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s failed; retrying in %.1f s", self.name, self.interval)
            await asyncio.sleep(self.interval)
