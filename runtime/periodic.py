"""A background job run every N seconds, whose failures are logged and retried."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


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

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"confab-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        if not self._first:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self._job()
            except Exception:
                logger.exception("%s failed; retrying in %.1f s", self.name, self.interval)
            await asyncio.sleep(self.interval)
