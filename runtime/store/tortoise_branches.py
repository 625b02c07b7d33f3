"""The message tree in the Tortoise store (runtime/branches.py has the rules).

Each message names its parent; among siblings one is selected; a message is on the
active path (`is_active`) when it and every ancestor are selected. Reads follow the
active path (`list_messages`, `message_tail`); an append follows the thread's leaf.
A branch (a new sibling) or a switch changes selections, then marks the path again
in one statement, within one transaction that also bumps the session's version
(so every replica's cached tail is reloaded).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from models import Message, Session, Thread, Turn
from runtime.errors import Conflict
from runtime.events.envelope import utc_now
from runtime.records import MessageRecord, SessionRecord
from runtime.store.protocol import NewMessage
from runtime.store.rows import MESSAGES, SESSIONS, as_uuid

# The active path from the selected root down through selected children, marked.
_MARK_PATH = """
WITH RECURSIVE path(id) AS (
    SELECT id FROM messages WHERE thread_id = {t} AND parent_id IS NULL AND is_selected
    UNION ALL
    SELECT m.id FROM messages m JOIN path ON m.parent_id = path.id
    WHERE m.thread_id = {t} AND m.is_selected
)
UPDATE messages SET is_active = (id IN (SELECT id FROM path))
WHERE thread_id = {t} AND is_active <> (id IN (SELECT id FROM path))
"""
# A message and its ancestors, nearest first.
_ANCESTRY = """
WITH RECURSIVE up(id, parent_id, depth) AS (
    SELECT id, parent_id, 0 FROM messages WHERE id = {m}
    UNION ALL
    SELECT p.id, p.parent_id, up.depth + 1 FROM messages p JOIN up ON p.id = up.parent_id
    WHERE up.depth < {most}
)
SELECT id, parent_id FROM up ORDER BY depth
"""


class TortoiseBranches:
    async def siblings(self, thread_id: UUID, parent_id: UUID | None) -> list[UUID]:
        """The messages of the thread that follow `parent_id`, oldest first."""
        rows = Message.filter(thread_id=thread_id)
        rows = (
            rows.filter(parent_id__isnull=True)
            if parent_id is None
            else rows.filter(parent_id=parent_id)
        )
        return [as_uuid(id) for id in await rows.order_by("seq").values_list("id", flat=True)]

    async def ancestry(self, message_id: UUID, most: int) -> list[UUID]:
        """The message and up to `most` of its ancestors, nearest first."""
        conn = _client()
        sql, values = _bind(conn, _ANCESTRY, m=message_id, most=most)
        return [as_uuid(row["id"]) for row in await conn.execute_query_dict(sql, values)]

    async def branch_message(
        self,
        sibling_of: MessageRecord,
        message: NewMessage,
        *,
        mark_processing: bool,
        queue_turn: bool,
    ) -> tuple[MessageRecord, SessionRecord]:
        """`message` as a new sibling of `sibling_of`, selected: the active path now
        ends with it."""
        now = utc_now()
        new_id = message.id or uuid4()
        parent = sibling_of.parent_id
        async with in_transaction() as conn:
            # The thread's row first: concurrent branches of one thread take turns here.
            await (
                Thread.filter(id=sibling_of.thread_id)
                .using_db(conn)
                .update(
                    next_seq=F("next_seq") + 1,
                    updated_at=now,
                    leaf_id=new_id,
                    leaf_parent_id=parent,
                )
            )
            await _refuse_if_answering(conn, message.session_id)
            thread = await Thread.get(id=sibling_of.thread_id, using_db=conn)
            siblings = Message.filter(thread_id=sibling_of.thread_id, is_selected=True)
            siblings = (
                siblings.filter(parent_id__isnull=True)
                if parent is None
                else siblings.filter(parent_id=parent)
            )
            await siblings.using_db(conn).update(is_selected=False)
            row = await Message.create(
                using_db=conn,
                id=new_id,
                session_id=message.session_id,
                thread_id=sibling_of.thread_id,
                seq=thread.next_seq - 1,
                role=message.role.value,
                content=message.content,
                tool_calls=message.tool_calls,
                tool_results=message.tool_results,
                is_interrupted=message.is_interrupted,
                created_at=now,
                parent_id=parent,
            )
            if queue_turn:
                await Turn.create(
                    using_db=conn,
                    session_id=message.session_id,
                    thread_id=sibling_of.thread_id,
                    message_id=new_id,
                    created_at=now,
                    updated_at=now,
                )
            await _mark_path(conn, sibling_of.thread_id)
            session = await _touch(conn, message.session_id, now, mark_processing)
        return MESSAGES.from_model(row), session

    async def rewind(self, question: MessageRecord) -> SessionRecord:
        """End the active path at `question` (its answers stay, unselected) and queue a
        turn answering it again: the new answer is appended as their sibling."""
        now = utc_now()
        async with in_transaction() as conn:
            await (
                Thread.filter(id=question.thread_id)
                .using_db(conn)
                .update(updated_at=now, leaf_id=question.id, leaf_parent_id=question.parent_id)
            )
            await (
                Message.filter(thread_id=question.thread_id, parent_id=question.id)
                .using_db(conn)
                .update(is_selected=False)
            )
            await Turn.create(
                using_db=conn,
                session_id=question.session_id,
                thread_id=question.thread_id,
                message_id=question.id,
                created_at=now,
                updated_at=now,
            )
            await _mark_path(conn, question.thread_id)
            return await _touch(conn, question.session_id, now, True)

    async def switch_branch(
        self, message: MessageRecord, chain: list[UUID]
    ) -> tuple[SessionRecord, UUID | None]:
        """Select `message` and its ancestors (`chain`, from `ancestry`): the active
        path runs through it, then down its selected descendants."""
        now = utc_now()
        async with in_transaction() as conn:
            await Thread.filter(id=message.thread_id).using_db(conn).update(updated_at=now)
            await _refuse_if_answering(conn, message.session_id)
            rows = Message.filter(thread_id=message.thread_id).using_db(conn)
            parents = await rows.filter(id__in=chain).values_list("parent_id", flat=True)
            known = [p for p in parents if p is not None]
            around = Q(parent_id__isnull=True) | Q(parent_id__in=known)
            await rows.filter(around).update(is_selected=False)
            await rows.filter(id__in=chain).update(is_selected=True)
            await _mark_path(conn, message.thread_id)
            leaf = await rows.filter(is_active=True).order_by("-seq").first()
            await (
                Thread.filter(id=message.thread_id)
                .using_db(conn)
                .update(
                    leaf_id=None if leaf is None else leaf.id,
                    leaf_parent_id=None if leaf is None else leaf.parent_id,
                )
            )
            session = await _touch(conn, message.session_id, now, False)
        return session, None if leaf is None else as_uuid(leaf.id)


async def _refuse_if_answering(conn: BaseDBAsyncClient, session_id: UUID) -> None:
    """Checked again with the thread's row locked (another replica may have begun an
    answer since the caller looked): that answer would land on the new path."""
    session = await Session.get_or_none(id=session_id, using_db=conn)
    if session is not None and session.is_processing:
        raise Conflict("the session is answering: wait for the answer (or interrupt it) first")


async def _mark_path(conn: BaseDBAsyncClient, thread_id: UUID) -> None:
    sql, values = _bind(conn, _MARK_PATH, t=thread_id)
    await conn.execute_query(sql, values)


async def _touch(
    conn: BaseDBAsyncClient, session_id: UUID, now: Any, mark_processing: bool
) -> SessionRecord:
    changes: dict[str, Any] = {
        "version": F("version") + 1,
        "updated_at": now,
        "last_active_at": now,
    }
    if mark_processing:
        changes["is_processing"] = True
    await Session.filter(id=session_id).using_db(conn).update(**changes)
    return SESSIONS.from_model(await Session.get(id=session_id, using_db=conn))


def _client() -> BaseDBAsyncClient:
    client: BaseDBAsyncClient = connections.get("default")
    return client


def _bind(conn: BaseDBAsyncClient, template: str, **values: Any) -> tuple[str, list[Any]]:
    """`template`'s `{name}`s as the dialect's placeholders, in order of appearance
    (a name used twice is passed twice)."""
    postgres = conn.capabilities.dialect == "postgres"
    ordered: list[Any] = []

    class Marks(dict[str, str]):
        def __missing__(self, name: str) -> str:
            value = values[name]
            ordered.append(value if postgres or not isinstance(value, UUID) else str(value))
            return f"${len(ordered)}" if postgres else "?"

    return template.format_map(Marks()), ordered
