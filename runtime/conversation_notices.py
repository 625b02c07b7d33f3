"""Conversations' system notices and messages (runtime/conversations.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from runtime import validation
from runtime.apps import Caller
from runtime.errors import InvalidInput
from runtime.events.envelope import INTERNAL_TYPES, SYSTEM_NOTICE
from runtime.records import JSONObject, MessageRecord, Role, SessionRecord, SystemEventRecord
from runtime.store import NewMessage

if TYPE_CHECKING:
    from runtime.sessions import SessionHost
    from runtime.store import SessionStore

SYSTEM_MESSAGE_MAX = 4_000


class SystemMessages:
    if TYPE_CHECKING:  # provided by Conversations (runtime/conversations.py)
        _store: SessionStore
        _host: SessionHost

        async def get_session(self, caller: Caller, session_id: UUID) -> SessionRecord: ...

        async def find_session(self, caller: Caller, session_id: UUID) -> SessionRecord | None: ...

        async def append(
            self,
            session: SessionRecord,
            message: NewMessage,
            *,
            mark_processing: bool = False,
            queue_turn: bool = False,
        ) -> tuple[MessageRecord, SessionRecord]: ...

        async def _publish(
            self, record: SessionRecord, event_type: str, data: JSONObject
        ) -> None: ...

    # -- system events -----------------------------------------------------------

    async def post_system_notice(
        self, caller: Caller, session_id: UUID, message: str
    ) -> SystemEventRecord:
        text = _system_text(message)
        record = await self.get_session(caller, session_id)
        event = await self._host.add_system_event(session_id, "notice", {"message": text})
        await self._publish(record, SYSTEM_NOTICE, {"message": text, "event_id": event.id})
        return event

    async def add_system_message(
        self, caller: Caller, session_id: UUID, text: str, event: JSONObject | None = None
    ) -> MessageRecord:
        """Store a system message in the primary thread of the caller's session
        (which must exist: the transport creates it first, as legacy `/api/system`
        does). Plain text is also a system notice: listed with the session's system
        events and published as `system_notice`. With `event` (an object with a
        `type` that is not an internal one) it is published as that event instead."""
        self.check_system_message(text, event)
        record = await self.get_session(caller, session_id)
        message, updated = await self.append(
            record,
            NewMessage(session_id=session_id, thread_id=session_id, role=Role.SYSTEM, content=text),
        )
        if event is None:
            notice = text.strip()
            stored = await self._host.add_system_event(session_id, "notice", {"message": notice})
            await self._publish(updated, SYSTEM_NOTICE, {"message": notice, "event_id": stored.id})
        elif str(event.get("type")) not in INTERNAL_TYPES:
            data = {k: v for k, v in event.items() if k != "type"}
            await self._publish(updated, str(event["type"]), data)
        return message

    @staticmethod
    def check_system_message(text: str, event: JSONObject | None = None) -> None:
        """`InvalidInput` unless `add_system_message` would take these."""
        _system_text(text)
        if event is not None:
            validation.json_object_arg("message", event)

    async def list_system_events(
        self, caller: Caller, session_id: UUID, after_id: int = 0, limit: int = 100
    ) -> list[SystemEventRecord]:
        await self.get_session(caller, session_id)
        return await self._store.list_system_events(session_id, after_id, limit)


def _system_text(text: str) -> str:
    """The text of a system notice or message, stripped: `InvalidInput` if it is
    blank or longer than `SYSTEM_MESSAGE_MAX`."""
    clean = validation.text_arg("message", text).strip()
    if not clean:
        raise InvalidInput("message", "must not be empty")
    if len(clean) > SYSTEM_MESSAGE_MAX:
        raise InvalidInput("message", f"must be at most {SYSTEM_MESSAGE_MAX} characters")
    return clean
