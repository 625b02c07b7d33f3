"""Conversations' threads and their messages (runtime/conversations.py): every
operation checked against the caller through the session it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from runtime import validation
from runtime.apps import Caller
from runtime.errors import Conflict, NotFound
from runtime.records import MessageRecord, Page, SessionRecord, ThreadRecord
from runtime.store import MessageWindow

if TYPE_CHECKING:
    from runtime.sessions import SessionHost
    from runtime.store import SessionStore


class ThreadOperations:
    if TYPE_CHECKING:  # provided by Conversations (runtime/conversations.py)
        _store: SessionStore
        _host: SessionHost

        async def get_session(self, caller: Caller, session_id: UUID) -> SessionRecord: ...

        async def find_session(self, caller: Caller, session_id: UUID) -> SessionRecord | None: ...

    # -- threads -------------------------------------------------------------

    async def get_thread(self, caller: Caller, thread_id: UUID) -> ThreadRecord:
        thread = await self._store.get_thread(thread_id)
        if thread is None or await self.find_session(caller, thread.session_id) is None:
            raise NotFound(f"thread {thread_id} not found")
        return thread

    async def list_threads(self, caller: Caller, session_id: UUID) -> list[ThreadRecord]:
        await self.get_session(caller, session_id)
        return await self._store.list_threads(session_id)

    async def create_thread(
        self,
        caller: Caller,
        session_id: UUID,
        thread_id: UUID | None = None,
        title: str | None = None,
    ) -> ThreadRecord:
        clean = None if title is None else validation.title_arg("title", title)
        await self.get_session(caller, session_id)
        new_id = thread_id or uuid4()
        thread = await self._store.create_thread(session_id, new_id, clean)
        if thread is None:
            raise Conflict(f"thread id {new_id} is already in use")
        return thread

    async def rename_thread(self, caller: Caller, thread_id: UUID, title: str) -> ThreadRecord:
        clean = validation.title_arg("title", title)
        await self.get_thread(caller, thread_id)
        thread = await self._store.rename_thread(thread_id, clean)
        if thread is None:
            raise NotFound(f"thread {thread_id} not found")
        return thread

    async def delete_thread(self, caller: Caller, thread_id: UUID) -> None:
        thread = await self.get_thread(caller, thread_id)
        if thread.is_primary:
            raise Conflict("the primary thread is deleted only with its session")
        if not await self._store.delete_thread(thread_id):
            raise NotFound(f"thread {thread_id} not found")

    # -- messages ------------------------------------------------------------

    async def list_messages(
        self, caller: Caller, thread_id: UUID, window: MessageWindow
    ) -> Page[MessageRecord]:
        await self.get_thread(caller, thread_id)
        return await self._store.list_messages(thread_id, window)
