"""Hand-written SQL for the chat append on SQLite, the embedded default.

Through the ORM an append is eight statements (an existence check, then update,
re-read, insert, update, re-read in a transaction), and on SQLite every one is a
hop to aiosqlite's thread. With `RETURNING` (SQLite 3.35+) it is four, and no
query building. Values are encoded by the models' own fields, and the session
row decoded by the model, so a row written here reads exactly as one the ORM
wrote (UUIDs and datetimes as text, booleans as integers, JSON as text).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from models import Message, Session
from runtime.records import MessageRecord, SessionRecord
from runtime.store.protocol import NewMessage
from runtime.store.rows import SESSIONS

_NEXT_SEQ = (
    "UPDATE threads SET next_seq = next_seq + 1, updated_at = ?, leaf_parent_id = leaf_id, "
    "leaf_id = ? WHERE id = ? RETURNING next_seq - 1 AS seq, leaf_parent_id AS parent_id"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (id, session_id, thread_id, seq, role, content, tool_calls, "
    "tool_results, is_interrupted, created_at, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_TURN = (
    "INSERT INTO turns (session_id, thread_id, message_id, status, attempts, tool_started, "
    "partial_text, created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, 0, '', ?, ?)"
)
_TOUCH_SESSION = (
    "UPDATE sessions SET version = version + 1, updated_at = ?, last_active_at = ?, "
    "is_processing = is_processing OR ?, expires_at = COALESCE(?, expires_at) "
    "WHERE id = ? RETURNING *"
)


def _db(model: type[Model], field: str, value: Any) -> Any:
    """`value` as the ORM would store it in `model.field`."""
    return model._meta.fields_map[field].to_db_value(value, model)


async def append_message(
    conn: BaseDBAsyncClient,
    message: NewMessage,
    message_id: UUID,
    now: datetime,
    mark_processing: bool,
    expires_at: datetime | None,
    queue_turn: bool,
) -> tuple[MessageRecord, SessionRecord] | None:
    """Within the caller's transaction: SQLite takes the database's write lock at the
    first UPDATE, so concurrent appends get distinct, gapless sequence numbers."""
    at = _db(Message, "created_at", now)
    seqs = await conn.execute_query_dict(_NEXT_SEQ, [at, str(message_id), str(message.thread_id)])
    if not seqs:
        return None
    seq, parent = seqs[0]["seq"], seqs[0]["parent_id"]
    await conn.execute_insert(
        _INSERT_MESSAGE,
        [
            str(message_id),
            str(message.session_id),
            str(message.thread_id),
            seq,
            message.role.value,
            message.content,
            _db(Message, "tool_calls", message.tool_calls),
            _db(Message, "tool_results", message.tool_results),
            message.is_interrupted,
            at,
            parent,
        ],
    )
    if queue_turn:
        await conn.execute_insert(
            _INSERT_TURN, [str(message.session_id), str(message.thread_id), str(message_id), at, at]
        )
    sessions = await conn.execute_query_dict(
        _TOUCH_SESSION,
        [at, at, mark_processing, _db(Session, "expires_at", expires_at), str(message.session_id)],
    )
    record = MessageRecord(
        id=message_id,
        session_id=message.session_id,
        thread_id=message.thread_id,
        seq=seq,
        role=message.role,
        content=message.content,
        tool_calls=message.tool_calls,
        tool_results=message.tool_results,
        is_interrupted=message.is_interrupted,
        created_at=now,
        parent_id=None if parent is None else UUID(parent),
    )
    return record, SESSIONS.from_model(Session._init_from_db(**sessions[0]))
