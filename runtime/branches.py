"""Branches: a thread is a tree of messages with one active path.

Every message follows a parent (the thread's first has none). Editing a user
message adds a new version of it (a sibling) and the assistant answers that
(runtime/turns/service.py, `edit_message`); switching makes the path through a
message active, continuing down the versions last chosen below it. Reads follow
the active path (pages, snapshots, the REST layer, the model's context, search
hits' cursors, exports), so a client that knows nothing of branches sees one
coherent conversation. Other tabs hear `message_edited` and `branch_switched`.

Bounded: `CONFAB_BRANCH_MAX_SIBLINGS` versions of a message, and a branch only
within `CONFAB_BRANCH_MAX_DEPTH` messages of a thread's start. A session that is
answering is not branched: the answer in progress would land on the new path.
"""

from __future__ import annotations

from uuid import UUID

from runtime.announcer import Announcer
from runtime.apps import Caller
from runtime.conversations import Conversations
from runtime.errors import Conflict, InvalidInput, NotFound
from runtime.events.envelope import BRANCH_SWITCHED
from runtime.records import MessageRecord, Role, SessionRecord
from runtime.sessions import SessionHost
from runtime.store import NewMessage, SessionStore

# How many messages an answer may span above the one regenerated (tool calls, their
# results, the final text), looking for its question.
ANSWER_MAX_MESSAGES = 64


class Branches:
    def __init__(
        self,
        store: SessionStore,
        host: SessionHost,
        conversations: Conversations,
        announcer: Announcer,
        max_siblings: int,
        max_depth: int,
    ) -> None:
        self._store = store
        self._host = host
        self._conversations = conversations
        self._announcer = announcer
        self._max_siblings = max_siblings
        self._max_depth = max_depth

    async def versions(self, message: MessageRecord) -> list[UUID]:
        """The versions of a message (from `message`, so the caller's), oldest first."""
        return await self._store.siblings(message.thread_id, message.parent_id)

    async def message(
        self, caller: Caller, message_id: UUID
    ) -> tuple[MessageRecord, SessionRecord]:
        """A message of one of the caller's sessions, and the session; another app's is
        reported exactly like a missing one."""
        message = await self._store.get_message(message_id)
        if message is None:
            raise NotFound(f"message {message_id} not found")
        return message, await self._conversations.get_session(caller, message.session_id)

    def check_idle(self, session: SessionRecord, busy: bool) -> None:
        if busy or session.is_processing:
            raise Conflict("the session is answering: wait for the answer (or interrupt it) first")

    async def check_room(self, message: MessageRecord) -> None:
        """INVALID_INPUT when another version of `message` would pass the limits."""
        versions = await self._store.siblings(message.thread_id, message.parent_id)
        if len(versions) >= self._max_siblings:
            raise InvalidInput("id", f"has {len(versions)} versions, the most a message may have")
        if len(await self._store.ancestry(message.id, self._max_depth)) > self._max_depth:
            raise InvalidInput(
                "id", f"is over {self._max_depth} messages deep: too deep to branch from"
            )

    async def branch(
        self,
        session: SessionRecord,
        sibling_of: MessageRecord,
        message: NewMessage,
        *,
        mark_processing: bool,
        queue_turn: bool,
    ) -> tuple[MessageRecord, SessionRecord]:
        """Store `message` as a new version of `sibling_of` (checked already)."""
        stored, record = await self._store.branch_message(
            sibling_of, message, mark_processing=mark_processing, queue_turn=queue_turn
        )
        await self._reloaded(record)
        return stored, record

    async def question_of(self, answer: MessageRecord) -> MessageRecord:
        """The user message an assistant message answers (the nearest user message
        above it); INVALID_INPUT for a message that is not an answer."""
        if answer.role is not Role.ASSISTANT:
            raise InvalidInput("messageId", "only the assistant's answers can be regenerated")
        for ancestor in (await self._store.ancestry(answer.id, ANSWER_MAX_MESSAGES))[1:]:
            found = await self._store.get_message(ancestor)
            if found is not None and found.role is Role.USER:
                return found
        raise InvalidInput("messageId", "answers no user message")

    async def rewind(self, question: MessageRecord) -> SessionRecord:
        """End the path at `question` and queue its new answer (checked already)."""
        record = await self._store.rewind(question)
        await self._reloaded(record)
        await self._announcer.publish(
            record,
            BRANCH_SWITCHED,
            {
                "thread_id": str(question.thread_id),
                "message_id": str(question.id),
                "leaf_id": str(question.id),
            },
        )
        return record

    async def switch(self, caller: Caller, message_id: UUID, busy: bool) -> SessionRecord:
        message, session = await self.message(caller, message_id)
        self.check_idle(session, busy)
        chain = await self._store.ancestry(message.id, self._max_depth)
        record, leaf = await self._store.switch_branch(message, chain)
        await self._reloaded(record)
        await self._announcer.publish(
            record,
            BRANCH_SWITCHED,
            {
                "thread_id": str(message.thread_id),
                "message_id": str(message.id),
                "leaf_id": str(leaf or message.id),
            },
        )
        return record

    async def _reloaded(self, record: SessionRecord) -> None:
        """The path changed: the cached tail (of the old path) goes, the new version
        is told to every replica."""
        self._host.unload(record.id)
        await self._host.refresh(record)
