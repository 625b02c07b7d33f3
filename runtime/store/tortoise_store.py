"""The Tortoise ORM implementation of the store protocol (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from models import Message, Session, SystemEvent, Thread, Turn
from runtime import database
from runtime.errors import Conflict, NotFound
from runtime.events.envelope import utc_now
from runtime.records import (
    UNFINISHED_TURNS,
    JSONObject,
    MessageRecord,
    Page,
    SessionRecord,
    SystemEventRecord,
    ThreadRecord,
    TurnRecord,
    TurnStatus,
)
from runtime.store import postgres_sql, sqlite_sql
from runtime.store.protocol import MessageTail, MessageWindow, NewMessage, SessionQuery
from runtime.store.rows import MESSAGES, SESSIONS, SYSTEM_EVENTS, THREADS, TURNS, as_uuid
from runtime.store.tortoise_app_keys import TortoiseAppKeys
from runtime.store.tortoise_branches import TortoiseBranches
from runtime.store.tortoise_feedback import TortoiseFeedback
from runtime.store.tortoise_memory import TortoiseMemories
from runtime.store.tortoise_search import TortoiseSearch


class TortoiseStore(
    TortoiseAppKeys, TortoiseMemories, TortoiseFeedback, TortoiseSearch, TortoiseBranches
):
    """The ORM for everything, with single-statement SQL for the hot paths on
    PostgreSQL (see `postgres_sql`)."""

    def __init__(self) -> None:
        self._postgres: bool | None = None

    def _fast(self) -> BaseDBAsyncClient | None:
        """The PostgreSQL client when the fast path applies, else None."""
        client = connections.get("default")
        if self._postgres is None:
            self._postgres = client.capabilities.dialect == "postgres"
        return client if self._postgres else None

    async def ping(self) -> None:
        await database.ping()

    async def get_session(self, session_id: UUID) -> SessionRecord | None:
        row = await Session.get_or_none(id=session_id)
        return None if row is None else SESSIONS.from_model(row)

    async def create_session(
        self, session_id: UUID, app: str, fields: Mapping[str, Any]
    ) -> tuple[SessionRecord, bool]:
        now = utc_now()
        try:
            async with in_transaction() as conn:
                row = await Session.create(
                    using_db=conn,
                    id=session_id,
                    app_id=app,
                    created_at=now,
                    updated_at=now,
                    last_active_at=now,
                    **fields,
                )
                await Thread.create(
                    using_db=conn,
                    id=session_id,
                    session_id=session_id,
                    is_primary=True,
                    created_at=now,
                    updated_at=now,
                )
        except IntegrityError:
            existing = await Session.get_or_none(id=session_id)
            if existing is not None:
                return SESSIONS.from_model(existing), False
            if await Thread.exists(id=session_id):
                # A session's primary thread takes the session's id.
                raise Conflict(f"id {session_id} is already in use by a thread") from None
            raise  # lost a race with a delete; the caller may retry
        return SESSIONS.from_model(row), True

    async def update_session(
        self,
        session_id: UUID,
        fields: Mapping[str, Any],
        expect: Mapping[str, Any] | None = None,
    ) -> SessionRecord | None:
        client = self._fast()
        if client is not None:
            return await postgres_sql.update_session(client, session_id, fields, expect, utc_now())
        async with in_transaction() as conn:
            updated = await (
                Session.filter(id=session_id, **(expect or {}))
                .using_db(conn)
                .update(**fields, version=F("version") + 1, updated_at=utc_now())
            )
            if not updated:
                return None
            row = await Session.get(id=session_id, using_db=conn)
        return SESSIONS.from_model(row)

    async def delete_session(self, session_id: UUID) -> bool:
        # Threads, messages and system events go with it (ON DELETE CASCADE).
        return bool(await Session.filter(id=session_id).delete())

    async def has_messages(self, session_id: UUID) -> bool:
        return await Message.exists(session_id=session_id)

    async def list_sessions(self, query: SessionQuery) -> Page[SessionRecord]:
        rows = (
            Session.filter(app_id=query.apps[0])
            if len(query.apps) == 1
            else Session.filter(app_id__in=list(query.apps))
        )
        if query.public_key is not None:
            rows = rows.filter(public_key=query.public_key)
        if query.archived is not None:
            rows = rows.filter(is_archived=query.archived)
        if query.active_before is not None:
            rows = rows.filter(last_active_at__lt=query.active_before)
        if query.after is not None:
            pinned, active, last_id = query.after
            older = Q(last_active_at__lt=active) | Q(last_active_at=active, id__lt=last_id)
            same = Q(older, is_pinned=pinned)
            rows = rows.filter(Q(same, Q(is_pinned=False), join_type="OR") if pinned else same)
        found = await rows.order_by("-is_pinned", "-last_active_at", "-id").limit(query.limit + 1)
        return Page(
            items=[SESSIONS.from_model(row) for row in found[: query.limit]],
            has_next=len(found) > query.limit,
            has_previous=query.after is not None,
        )

    async def get_thread(self, thread_id: UUID) -> ThreadRecord | None:
        row = await Thread.get_or_none(id=thread_id)
        return None if row is None else THREADS.from_model(row)

    async def list_threads(self, session_id: UUID) -> list[ThreadRecord]:
        rows = await Thread.filter(session_id=session_id).order_by("created_at", "id")
        return [THREADS.from_model(row) for row in rows]

    async def create_thread(
        self, session_id: UUID, thread_id: UUID, title: str | None
    ) -> ThreadRecord | None:
        now = utc_now()
        try:
            row = await Thread.create(
                id=thread_id, session_id=session_id, title=title, created_at=now, updated_at=now
            )
        except IntegrityError:
            return None
        return THREADS.from_model(row)

    async def rename_thread(self, thread_id: UUID, title: str) -> ThreadRecord | None:
        if not await Thread.filter(id=thread_id).update(title=title, updated_at=utc_now()):
            return None
        return await self.get_thread(thread_id)

    async def delete_thread(self, thread_id: UUID) -> bool:
        return bool(await Thread.filter(id=thread_id, is_primary=False).delete())

    async def append_message(
        self,
        message: NewMessage,
        *,
        mark_processing: bool = False,
        expires_at: datetime | None = None,
        queue_turn: bool = False,
    ) -> tuple[MessageRecord, SessionRecord]:
        now = utc_now()
        client = self._fast()
        if client is not None:
            appended = await postgres_sql.append_message(
                client, message, message.id or uuid4(), now, mark_processing, expires_at, queue_turn
            )
            if appended is None:
                raise NotFound(f"thread {message.thread_id} not found")
            return appended
        async with in_transaction() as conn:
            appended = await sqlite_sql.append_message(
                conn, message, message.id or uuid4(), now, mark_processing, expires_at, queue_turn
            )
        if appended is None:
            raise NotFound(f"thread {message.thread_id} not found")
        return appended

    async def get_message(self, message_id: UUID) -> MessageRecord | None:
        row = await Message.get_or_none(id=message_id)
        return None if row is None else MESSAGES.from_model(row)

    async def unfinished_turns(self, session_id: UUID, limit: int) -> list[TurnRecord]:
        rows = (
            await Turn.filter(session_id=session_id, status__in=[s.value for s in UNFINISHED_TURNS])
            .order_by("id")
            .limit(limit)
        )
        return [TURNS.from_model(row) for row in rows]

    async def update_turn(
        self, turn_id: int, fields: Mapping[str, Any], expect: TurnStatus | None = None
    ) -> bool:
        rows = Turn.filter(id=turn_id)
        if expect is not None:
            rows = rows.filter(status=expect.value)
        values = {k: v.value if isinstance(v, TurnStatus) else v for k, v in fields.items()}
        return bool(await rows.update(**values, updated_at=utc_now()))

    async def cancel_queued_turns(self, session_id: UUID) -> int:
        return int(
            await Turn.filter(session_id=session_id, status=TurnStatus.QUEUED.value).update(
                status=TurnStatus.CANCELLED.value, updated_at=utc_now()
            )
        )

    async def expired_session_ids(self, now: datetime, limit: int) -> list[UUID]:
        rows = (
            await Session.filter(expires_at__lte=now, is_pinned=False)
            .order_by("expires_at")
            .limit(limit)
            .values_list("id", flat=True)
        )
        return [as_uuid(row) for row in rows]

    async def delete_sessions(self, session_ids: list[UUID]) -> int:
        if not session_ids:
            return 0
        return int(await Session.filter(id__in=session_ids).delete())

    async def processing_session_ids(self, limit: int) -> list[UUID]:
        rows = await Session.filter(is_processing=True).limit(limit).values_list("id", flat=True)
        return [as_uuid(row) for row in rows]

    async def list_messages(self, thread_id: UUID, window: MessageWindow) -> Page[MessageRecord]:
        client = self._fast()
        if client is not None:
            return await postgres_sql.list_messages(client, thread_id, window)
        rows = Message.filter(thread_id=thread_id, is_active=True)  # the active path
        if window.after is not None:
            rows = rows.filter(seq__gt=window.after)
        if window.before is not None:
            rows = rows.filter(seq__lt=window.before)
        if window.from_end:
            found = list(await rows.order_by("-seq").limit(window.limit + 1))
            more = len(found) > window.limit
            found = found[: window.limit][::-1]
            return Page(
                items=[MESSAGES.from_model(row) for row in found],
                has_next=window.before is not None,
                has_previous=more,
            )
        found = list(await rows.order_by("seq").limit(window.limit + 1))
        return Page(
            items=[MESSAGES.from_model(row) for row in found[: window.limit]],
            has_next=len(found) > window.limit,
            has_previous=window.after is not None,
        )

    async def message_tail(self, session_id: UUID, limit: int) -> MessageTail | None:
        client = self._fast()
        if client is not None:
            return await postgres_sql.message_tail(client, session_id, limit)
        # SQLite: one transaction on its one connection, so no write falls between.
        async with in_transaction() as conn:
            session = await Session.filter(id=session_id).using_db(conn).only("version").first()
            if session is None:
                return None
            rows = list(
                await Message.filter(thread_id=session_id, is_active=True)
                .using_db(conn)
                .order_by("-seq")
                .limit(limit + 1)
            )
        return MessageTail(
            version=session.version,
            messages=tuple(MESSAGES.from_model(row) for row in reversed(rows[:limit])),
            complete=len(rows) <= limit,
            capacity=limit,
        )

    async def add_system_event(
        self, session_id: UUID, kind: str, payload: JSONObject
    ) -> tuple[SystemEventRecord, SessionRecord | None]:
        now = utc_now()
        async with in_transaction() as conn:
            row = await SystemEvent.create(
                session_id=session_id, kind=kind, payload=payload, created_at=now, using_db=conn
            )
            await (
                Session.filter(id=session_id)
                .using_db(conn)
                .update(last_event_id=row.id, version=F("version") + 1, updated_at=now)
            )
            session = await Session.get_or_none(id=session_id, using_db=conn)
        stored = None if session is None else SESSIONS.from_model(session)
        return SYSTEM_EVENTS.from_model(row), stored

    async def list_system_events(
        self, session_id: UUID, after_id: int = 0, limit: int = 1000
    ) -> list[SystemEventRecord]:
        client = self._fast()
        if client is not None:
            return await postgres_sql.list_system_events(client, session_id, after_id, limit)
        rows = (
            await SystemEvent.filter(session_id=session_id, id__gt=after_id)
            .order_by("id")
            .limit(limit)
        )
        return [SYSTEM_EVENTS.from_model(row) for row in rows]
