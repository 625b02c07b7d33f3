"""Turns: the operations behind `sendMessage`, `interrupt` and `selectModel`."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from runtime import validation
from runtime.agents.registry import Agents
from runtime.announcer import Announcer
from runtime.apps import AppRegistry, Caller
from runtime.branches import Branches
from runtime.conversations import Conversations
from runtime.errors import InvalidInput, NotFound, RateLimited
from runtime.events.envelope import INTERRUPT_REQUESTED, MESSAGE_EDITED, PROCESSING_CHANGED
from runtime.leases import Leases
from runtime.memory import WalletMemories
from runtime.rate_limits import RateLimiter
from runtime.records import JSONObject, MessageRecord, Role, SessionRecord
from runtime.sessions import SessionHost
from runtime.store import NewMessage, SessionStore
from runtime.telemetry import tracing
from runtime.telemetry.context import turn_origins
from runtime.telemetry.metrics import Metrics
from runtime.turns.queue import TurnQueue
from runtime.turns.runner import TurnRunner
from runtime.turns.scheduler import TurnScheduler
from runtime.turns.streams import StreamingMessage, Streams
from runtime.turns.titles import Titler
from runtime.validation import text_arg

MESSAGE_MAX_BYTES = 32 * 1024
# How long an interrupt answered by one replica waits for the turn's replica to stop it.
REMOTE_INTERRUPT_WAIT = 3.0

logger = logging.getLogger(__name__)


class MessageTooLarge(InvalidInput):
    """Separate so REST can answer 413; GraphQL reports INVALID_INPUT."""


def message_content(field: str, content: str) -> str:
    text = text_arg(field, content).strip()
    if not text:
        raise InvalidInput(field, "must not be empty")
    size = len(text.encode())
    if size > MESSAGE_MAX_BYTES:
        raise MessageTooLarge(field, f"must be at most {MESSAGE_MAX_BYTES} bytes, got {size}")
    return text


class Turns:
    def __init__(
        self,
        host: SessionHost,
        store: SessionStore,
        apps: AppRegistry,
        conversations: Conversations,
        announcer: Announcer,
        agents: Agents,
        leases: Leases,
        lease_seconds: float,
        limits: RateLimiter,
        memories: WalletMemories,
        branches: Branches,
        metrics: Metrics | None = None,
    ) -> None:
        self._host = host
        self._branches = branches
        self._limits = limits
        self._store = store
        self._apps = apps
        self._conversations = conversations
        self._announcer = announcer
        self._agents = agents
        self.streams = Streams()
        metrics = metrics or Metrics()
        runner = TurnRunner(
            host, store, agents, announcer, self.streams, conversations, memories, metrics
        )
        titler = Titler(host, store, agents, announcer)
        self._scheduler = TurnScheduler(
            host,
            TurnQueue(store, host, announcer, conversations),
            runner,
            self._set_processing,
            titler.title_if_untitled,
            leases,
            lease_seconds,
            announcer.events,
            metrics,
        )

    async def send_message(
        self,
        caller: Caller,
        session_id: UUID,
        content: str,
        *,
        thread_id: UUID | None = None,
        user_state: object | None = None,
        public_key: str | None = None,
        legacy_id: str | None = None,
        client_id: str | None = None,
    ) -> SessionRecord:
        """Store the user's message and queue the assistant's turn; returns at once.

        All or nothing: every argument is checked, and the queue's capacity, before
        the session is created or changed. A new session gets `legacy_id` (its
        client's text id) and `client_id`; an existing one is associated with
        `client_id`."""
        text = message_content("content", content)
        if client_id is not None:
            validation.opaque_id_arg("client_id", client_id)
        state = None if user_state is None else validation.json_object_arg("userState", user_state)
        wallet = None if public_key is None else validation.public_key_arg("publicKey", public_key)
        limit = self._apps.get(caller.app).queue_limit
        async with self._host.lock(session_id):
            self._scheduler.check_capacity(session_id, limit)
            record = await self._conversations.find_session(caller, session_id)
            if thread_id is not None and thread_id != session_id:
                thread = await self._store.get_thread(thread_id)
                if record is None or thread is None or thread.session_id != session_id:
                    raise NotFound(f"thread {thread_id} not found in session {session_id}")
            await self._admit(caller, record, session_id, text)
            try:
                record = await self._accept(
                    caller, session_id, record, text, thread_id, state, wallet, legacy_id, client_id
                )
            except BaseException:
                if not self._scheduler.is_busy(session_id):  # give the slot back
                    await self._limits.turn_ended(caller.app, session_id)
                raise
            self._scheduler.submit(session_id, limit)
        return record

    async def _admit(
        self, caller: Caller, record: SessionRecord | None, session_id: UUID, text: str
    ) -> None:
        """The app's limits on messages: bytes per minute, sessions answering at once."""
        try:
            await self._limits.message(caller, len(text.encode()))
            await self._limits.turn_accepted(caller, session_id)
        except RateLimited as refused:
            if record is not None:
                await self._limits.slowed(record, refused)
            raise

    async def _accept(
        self,
        caller: Caller,
        session_id: UUID,
        record: SessionRecord | None,
        text: str,
        thread_id: UUID | None,
        state: JSONObject | None,
        wallet: str | None,
        legacy_id: str | None,
        client_id: str | None,
    ) -> SessionRecord:
        """Store the message (creating the session first if need be) and its turn."""
        if record is None:
            record, _ = await self._conversations.ensure_session(
                caller,
                session_id,
                public_key=wallet,
                user_state=state,
                legacy_id=legacy_id,
                client_id=client_id,
            )
        elif client_id is not None and client_id != record.client_id:
            record = await self._conversations.associate_client(caller, session_id, client_id)
        if state is not None and state != record.user_state:
            record = await self._conversations.update_user_state(caller, session_id, state)
        if wallet is not None and wallet != record.public_key:
            record = await self._conversations.bind_wallet(caller, session_id, wallet)
        starting = not self._scheduler.is_busy(session_id)
        message, record = await self._conversations.append(
            record,
            NewMessage(
                session_id=session_id,
                thread_id=thread_id or session_id,
                role=Role.USER,
                content=text,
            ),
            mark_processing=starting,
            queue_turn=True,
        )
        # The turn runs in the background: its log lines and spans continue this request's.
        turn_origins.remember(message.id, tracing.current_context())
        if starting:
            await self._announcer.publish(record, PROCESSING_CHANGED, {"is_processing": True})
        return record

    async def edit_message(self, caller: Caller, message_id: UUID, content: str) -> MessageRecord:
        """A new version of a user message, on the active path now, and its turn
        queued: the assistant answers the new text (runtime/branches.py)."""
        text = message_content("content", content)
        original, record = await self._branches.message(caller, message_id)
        if original.role is not Role.USER:
            raise InvalidInput("id", "only the user's messages can be edited")
        session_id = record.id
        limit = self._apps.get(caller.app).queue_limit
        async with self._host.lock(session_id):
            record = await self._conversations.get_session(caller, session_id)
            self._branches.check_idle(record, self._scheduler.is_busy(session_id))
            self._scheduler.check_capacity(session_id, limit)
            await self._branches.check_room(original)
            await self._admit(caller, record, session_id, text)
            try:
                message, record = await self._branches.branch(
                    record,
                    original,
                    NewMessage(
                        session_id=session_id,
                        thread_id=original.thread_id,
                        role=Role.USER,
                        content=text,
                    ),
                    mark_processing=True,
                    queue_turn=True,
                )
            except BaseException:
                await self._limits.turn_ended(caller.app, session_id)
                raise
            turn_origins.remember(message.id, tracing.current_context())
            await self._announcer.publish(
                record,
                MESSAGE_EDITED,
                {"message": message.as_json(), "replaces_id": str(message_id)},
            )
            await self._announcer.publish(record, PROCESSING_CHANGED, {"is_processing": True})
            self._scheduler.submit(session_id, limit)
        return message

    async def regenerate(
        self, caller: Caller, message_id: UUID, model: str | None = None
    ) -> SessionRecord:
        """A new answer to the question an assistant message answers, as a sibling of
        that answer (which is kept), with `model` selected first if given."""
        answer, record = await self._branches.message(caller, message_id)
        question = await self._branches.question_of(answer)
        if model is not None:
            self._apps.model_arg(caller.app, "model", model)
        session_id = record.id
        limit = self._apps.get(caller.app).queue_limit
        async with self._host.lock(session_id):
            record = await self._conversations.get_session(caller, session_id)
            self._branches.check_idle(record, self._scheduler.is_busy(session_id))
            self._scheduler.check_capacity(session_id, limit)
            first = await self._store.siblings(question.thread_id, question.id)
            if first:
                versions = await self._store.get_message(first[0])
                if versions is not None:
                    await self._branches.check_room(versions)
            await self._admit(caller, record, session_id, "")
            try:
                if model is not None and model != record.model:
                    await self._host.update(session_id, {"model": model})
                record = await self._branches.rewind(question)
            except BaseException:
                await self._limits.turn_ended(caller.app, session_id)
                raise
            await self._announcer.publish(record, PROCESSING_CHANGED, {"is_processing": True})
            self._scheduler.submit(session_id, limit)
        return record

    async def switch_branch(self, caller: Caller, message_id: UUID) -> SessionRecord:
        """The active path through this message (runtime/branches.py)."""
        _, record = await self._branches.message(caller, message_id)
        async with self._host.lock(record.id):
            return await self._branches.switch(
                caller, message_id, self._scheduler.is_busy(record.id)
            )

    async def interrupt(self, caller: Caller, session_id: UUID) -> SessionRecord:
        """Cancel the running turn (keeping its partial text) and drop queued ones,
        on whichever replica runs them; a no-op on an idle session."""
        record = await self._conversations.get_session(caller, session_id)
        ran_here = await self._scheduler.interrupt(session_id)
        if not ran_here and record.is_processing:
            await self._interrupt_elsewhere(record)
        return await self._conversations.get_session(caller, session_id)

    async def _interrupt_elsewhere(self, record: SessionRecord) -> None:
        """Ask the replica that holds the session's turn lease to stop (the queued
        turns are cancelled in the store already), and wait, bounded, until the
        session stops processing, so the answer shows the stopped session."""
        events = self._announcer.events
        async with events.subscribe(record.id) as stream:
            current = await self._host.load(record.id)  # it may have ended meanwhile
            if current is None or not current.is_processing:
                return
            await self._announcer.publish(record, INTERRUPT_REQUESTED, {})
            try:
                async with asyncio.timeout(REMOTE_INTERRUPT_WAIT):
                    async for event in stream:
                        if event.type == PROCESSING_CHANGED and not event.data.get("is_processing"):
                            return
            except TimeoutError:
                # No holder answered: it died (crash recovery resumes what it
                # left) or is partitioned from Redis. The stored queue is cancelled.
                logger.warning("interrupt of session %s: no replica stopped a turn", record.id)

    async def select_model(self, caller: Caller, session_id: UUID, model: str) -> SessionRecord:
        self._apps.model_arg(caller.app, "model", model)
        await self._conversations.get_session(caller, session_id)
        record = await self._host.update(session_id, {"model": model})
        if record is None:
            raise NotFound(f"session {session_id} not found")
        return record

    def resume(self, session_id: UUID) -> None:
        """Answer what is stored for a session whose server died (crash recovery)."""
        self._scheduler.resume(session_id)

    def is_busy(self, session_id: UUID) -> bool:
        """Whether this replica has turns of the session queued or running."""
        return self._scheduler.is_busy(session_id)

    @property
    def busy_sessions(self) -> int:
        """Sessions with turns queued or running on this replica."""
        return self._scheduler.busy_sessions

    @property
    def waiting_turns(self) -> int:
        """Turns accepted on this replica that have not started yet."""
        return self._scheduler.waiting_turns

    def streaming(self, session_id: UUID) -> StreamingMessage | None:
        return self.streams.get(session_id)

    async def shutdown(self) -> None:
        await self._scheduler.shutdown()

    async def _set_processing(self, session_id: UUID, on: bool) -> None:
        if on:
            current = await self._host.get(session_id)
            if current is None or current.is_processing:
                return
        record = await self._host.update(session_id, {"is_processing": on})
        if record is not None:
            await self._announcer.publish(record, PROCESSING_CHANGED, {"is_processing": on})
            if not on:
                await self._limits.turn_ended(record.app, session_id)
