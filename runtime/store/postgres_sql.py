"""Hand-written SQL for the store's hot paths on PostgreSQL.

Every chat message appends a message and updates its session twice; through the
ORM that is a transaction of five statements, each built by pypika at run time.
Here each is one statement with `RETURNING`, so one round trip and no query
building. SQLite keeps the ORM path (the embedded mode is not where throughput
matters); both run under the same tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from runtime.records import MessageRecord, Page, SessionRecord, SystemEventRecord
from runtime.store.protocol import MessageTail, MessageWindow, NewMessage
from runtime.store.rows import MESSAGES, SESSIONS, SYSTEM_EVENTS, as_json_text, from_json

SESSION_COLUMNS = SESSIONS.sql
MESSAGE_COLUMNS = MESSAGES.sql
# Columns a caller may set through `update_session` (every one but those the store
# keeps itself; `app_id` only by a claim, runtime/conversations.py, compared and set).
UPDATABLE = frozenset(SESSIONS.columns) - {
    "id",
    "version",
    "created_at",
    "updated_at",
    "last_event_id",
    "legacy_id",
}
# Columns a compare-and-set may also compare.
EXPECTABLE = UPDATABLE | {"version"}

_APPEND = f"""
WITH thread AS (
    UPDATE threads SET next_seq = next_seq + 1, updated_at = $1,
        leaf_parent_id = leaf_id, leaf_id = $4
    WHERE id = $2 RETURNING next_seq - 1 AS seq, leaf_parent_id AS parent_id
), session AS (
    UPDATE sessions SET version = version + 1, updated_at = $1, last_active_at = $1,
        is_processing = is_processing OR $10, expires_at = COALESCE($11, expires_at)
    WHERE id = $3 RETURNING {SESSION_COLUMNS}, search_lang
), message AS (
    INSERT INTO messages (id, session_id, thread_id, seq, role, content, tool_calls,
        tool_results, is_interrupted, created_at, search_lang, parent_id)
    SELECT $4, $3, $2, thread.seq, $5, $6, $7, $8, $9, $1, session.search_lang, thread.parent_id
    FROM thread, session
    RETURNING seq, tool_calls, tool_results, parent_id
), turn AS (
    INSERT INTO turns (session_id, thread_id, message_id, status, attempts, tool_started,
        partial_text, created_at, updated_at)
    SELECT $3, $2, $4, 'queued', 0, false, '', $1, $1 FROM message WHERE $12
)
SELECT message.seq AS message_seq, message.tool_calls AS message_tool_calls,
    message.tool_results AS message_tool_results, message.parent_id AS message_parent_id,
    session.* FROM message, session
"""


async def append_message(
    client: BaseDBAsyncClient,
    message: NewMessage,
    message_id: UUID,
    now: datetime,
    mark_processing: bool,
    expires_at: datetime | None,
    queue_turn: bool,
) -> tuple[MessageRecord, SessionRecord] | None:
    """One statement: the UPDATE of the thread row serializes concurrent appends."""
    rows = await client.execute_query_dict(
        _APPEND,
        [
            now,
            message.thread_id,
            message.session_id,
            message_id,
            message.role.value,
            message.content,
            as_json_text(message.tool_calls),
            as_json_text(message.tool_results),
            message.is_interrupted,
            mark_processing,
            expires_at,
            queue_turn,
        ],
    )
    if not rows:
        return None
    row = rows[0]
    record = MessageRecord(
        id=message_id,
        session_id=message.session_id,
        thread_id=message.thread_id,
        seq=row["message_seq"],
        role=message.role,
        content=message.content,
        # As stored: jsonb orders an object's keys its own way, and the record must
        # read the same whether it comes from this answer or from a later query.
        tool_calls=from_json(row["message_tool_calls"]),
        tool_results=from_json(row["message_tool_results"]),
        is_interrupted=message.is_interrupted,
        created_at=now,
        parent_id=row["message_parent_id"],
    )
    return record, SESSIONS.record(row)


async def update_session(
    client: BaseDBAsyncClient,
    session_id: UUID,
    fields: Mapping[str, Any],
    expect: Mapping[str, Any] | None,
    now: datetime,
) -> SessionRecord | None:
    unknown = (set(fields) - UPDATABLE) | (set(expect or {}) - EXPECTABLE)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values: list[Any] = [session_id, now]
    assignments = ["version = version + 1", "updated_at = $2"]
    for column, value in fields.items():
        values.append(as_json_text(value) if column in SESSIONS.json_columns else value)
        assignments.append(f"{column} = ${len(values)}")
    conditions = ["id = $1"]
    for column, value in (expect or {}).items():
        values.append(value)
        conditions.append(f"{column} = ${len(values)}")
    rows = await client.execute_query_dict(
        f"UPDATE sessions SET {', '.join(assignments)} WHERE {' AND '.join(conditions)} "
        f"RETURNING {SESSION_COLUMNS}",
        values,
    )
    return SESSIONS.record(rows[0]) if rows else None


async def list_messages(
    client: BaseDBAsyncClient, thread_id: UUID, window: MessageWindow
) -> Page[MessageRecord]:
    values: list[Any] = [thread_id, window.limit + 1]
    conditions = ["thread_id = $1", "is_active"]  # the active path (runtime/branches.py)
    if window.after is not None:
        values.append(window.after)
        conditions.append(f"seq > ${len(values)}")
    if window.before is not None:
        values.append(window.before)
        conditions.append(f"seq < ${len(values)}")
    order = "DESC" if window.from_end else "ASC"
    rows = await client.execute_query_dict(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {' AND '.join(conditions)} "
        f"ORDER BY seq {order} LIMIT $2",
        values,
    )
    more = len(rows) > window.limit
    found = [MESSAGES.record(row) for row in rows[: window.limit]]
    if window.from_end:
        return Page(items=found[::-1], has_next=window.before is not None, has_previous=more)
    return Page(items=found, has_next=more, has_previous=window.after is not None)


# One statement, so one snapshot: the version and the messages are of the same moment.
_TAIL = f"""
SELECT s.version AS session_version, m.* FROM sessions s LEFT JOIN LATERAL (
    SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = s.id AND is_active
    ORDER BY seq DESC LIMIT $2
) m ON true WHERE s.id = $1
"""


async def message_tail(
    client: BaseDBAsyncClient, session_id: UUID, limit: int
) -> MessageTail | None:
    rows = await client.execute_query_dict(_TAIL, [session_id, limit + 1])
    if not rows:
        return None
    found = [MESSAGES.record(row) for row in rows[:limit] if row["id"] is not None]
    return MessageTail(
        version=rows[0]["session_version"],
        messages=tuple(reversed(found)),
        complete=len(rows) <= limit,
        capacity=limit,
    )


async def list_system_events(
    client: BaseDBAsyncClient, session_id: UUID, after_id: int, limit: int
) -> list[SystemEventRecord]:
    rows = await client.execute_query_dict(
        f"SELECT {SYSTEM_EVENTS.sql} FROM system_events "
        "WHERE session_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        [session_id, after_id, limit],
    )
    return [SYSTEM_EVENTS.record(row) for row in rows]
