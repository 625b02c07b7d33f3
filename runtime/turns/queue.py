"""The durable turn queue: which stored turn of a session runs next.

Accepting a message stores its turn (`queued`) in the same transaction. The
replica holding the session's turn lease claims the oldest unfinished turn
(`running`) and, when it ends, records how (`done`, `failed`, `interrupted`).
Because only the lease holder claims, a turn found `running` by a new holder was
left by one that died (a crash, or a shutdown in the middle of it). Such a turn:

- keeps the text it had streamed (checkpointed on its row) as an interrupted
  answer;
- is run again from its user message if no tool had started, since nothing but
  text was produced;
- is otherwise marked interrupted, with an error notice saying why: a tool may
  have had effects, and is never run twice without the user asking;
- is given up after `MAX_ATTEMPTS` claims (a turn that keeps killing its server).
"""

from __future__ import annotations

from uuid import UUID, uuid4

from runtime.announcer import Announcer
from runtime.conversations import Conversations
from runtime.notices import post_notice
from runtime.records import SessionRecord, TurnRecord, TurnStatus
from runtime.sessions import SessionHost
from runtime.store import SessionStore
from runtime.turns.checkpoint import keep_partial
from runtime.turns.runner import Turn

CLAIM_BATCH = 20
MAX_ATTEMPTS = 3
TOOL_STARTED_NOTICE = (
    "The assistant's turn was interrupted: the server running it stopped after a tool "
    "had started. It was not run again, because the tool may already have had its effect."
)
GAVE_UP_NOTICE = "The assistant's turn was given up: the server stopped each time it ran."


class TurnQueue:
    def __init__(
        self,
        store: SessionStore,
        host: SessionHost,
        announcer: Announcer,
        conversations: Conversations,
    ) -> None:
        self._store = store
        self._host = host
        self._announcer = announcer
        self._conversations = conversations

    async def next(self, session_id: UUID) -> Turn | None:
        """Claim the session's next turn; the caller holds the session's turn lease."""
        session = await self._host.get(session_id)
        if session is None:
            return None  # deleted: its turns went with it
        for row in await self._store.unfinished_turns(session_id, CLAIM_BATCH):
            if row.status is TurnStatus.RUNNING and not await self._resumable(session, row):
                continue
            claimed = await self._store.update_turn(
                row.id,
                {"status": TurnStatus.RUNNING, "attempts": row.attempts + 1},
                expect=row.status,
            )
            if not claimed:
                continue  # cancelled meanwhile
            question = await self._store.get_message(row.message_id)
            if question is None:
                await self.finish(row.id, TurnStatus.FAILED)
                continue
            if not question.is_active:
                # Replaced by another version of it (two edits at once, say): that
                # version's own turn answers; this answer would land on its path.
                await self.finish(row.id, TurnStatus.CANCELLED)
                continue
            return Turn(row.id, session_id, row.thread_id, session.app, question)
        return None

    async def finish(
        self, turn_id: int, status: TurnStatus, usage: tuple[int, int] | None = None
    ) -> None:
        """The turn's end, with what it sent the model (`usage`: messages, tokens)."""
        fields: dict[str, object] = {"status": status, "partial_text": ""}
        if usage is not None:
            fields["prompt_messages"], fields["prompt_tokens"] = usage
        await self._store.update_turn(turn_id, fields)

    async def cancel_queued(self, session_id: UUID) -> int:
        return await self._store.cancel_queued_turns(session_id)

    async def _resumable(self, session: SessionRecord, row: TurnRecord) -> bool:
        """Settle a turn its dead holder left running; True if it should run again."""
        if row.reply_id is not None and await self._store.get_message(row.reply_id) is not None:
            if not row.tool_started:
                # The answer was stored; only the bookkeeping after it was lost.
                await self.finish(row.id, TurnStatus.DONE)
                return False
        elif row.partial_text:
            await keep_partial(
                self._conversations,
                session,
                row.thread_id,
                row.reply_id or uuid4(),
                row.partial_text,
            )
            await self._store.update_turn(row.id, {"partial_text": "", "reply_id": None})
        if row.tool_started or row.attempts >= MAX_ATTEMPTS:
            await self.finish(row.id, TurnStatus.INTERRUPTED)
            notice = TOOL_STARTED_NOTICE if row.tool_started else GAVE_UP_NOTICE
            await post_notice(self._host, self._announcer, session, "error", notice)
            return False
        return True
