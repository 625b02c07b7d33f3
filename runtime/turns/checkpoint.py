"""A streaming answer saved to its turn's row as it streams, so a crash keeps it.

Writes go out in the background, one at a time and at least `interval` apart: a
fast stream costs a few small writes a second and never waits on the database,
and a crash loses at most the text of the last interval. An answer cut short
(the model failed, the user interrupted, its server died) is kept as an
interrupted message (`keep_partial`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

from runtime.conversations import Conversations
from runtime.records import Role, SessionRecord, TurnStatus
from runtime.store import NewMessage, SessionStore

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL = 0.25


class Checkpoint:
    def __init__(
        self, store: SessionStore, turn_id: int, interval: float = CHECKPOINT_INTERVAL
    ) -> None:
        self._store = store
        self._turn_id = turn_id
        self._interval = interval
        self._latest: tuple[UUID, str] | None = None
        self._saved: tuple[UUID, str] | None = None
        self._writer: asyncio.Task[None] | None = None

    def update(self, reply_id: UUID, text: str) -> None:
        """The answer so far; saved soon, without waiting here."""
        self._latest = (reply_id, text)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_changed())

    async def close(self) -> None:
        """Stop writing (what is saved stays); the turn is over or moves on."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None

    async def flush(self) -> None:
        """Save the latest text now (the process is stopping)."""
        await self.close()
        await self._save()

    async def _write_while_changed(self) -> None:
        try:
            while self._latest != self._saved:
                await self._save()
                await asyncio.sleep(self._interval)
        except Exception as exc:  # the turn goes on; only the crash safety net is weaker
            logger.warning("could not checkpoint turn %s: %s", self._turn_id, exc)

    async def _save(self) -> None:
        latest = self._latest
        if latest is None or latest == self._saved:
            return
        await self._store.update_turn(
            self._turn_id,
            {"reply_id": latest[0], "partial_text": latest[1]},
            expect=TurnStatus.RUNNING,
        )
        self._saved = latest


async def keep_partial(
    conversations: Conversations,
    session: SessionRecord,
    thread_id: UUID,
    reply_id: UUID,
    text: str,
) -> None:
    """Store the text an answer had when it was cut short (if any), marked interrupted."""
    if not text:
        return
    await conversations.append(
        session,
        NewMessage(
            session_id=session.id,
            thread_id=thread_id,
            role=Role.ASSISTANT,
            content=text,
            is_interrupted=True,
            id=reply_id,
        ),
    )
