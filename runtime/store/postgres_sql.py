"""Hand-written SQL for the store's hot paths on PostgreSQL.

Every chat message appends a message and updates its session twice; through the
ORM that is a transaction of five statements, each built by pypika at run time.
Here each is one statement with `RETURNING`, so one round trip and no query
building. SQLite keeps the ORM path (the embedded mode is not where throughput
matters); both run under the same tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from runtime.records import (
    MessageRecord,
    Page,
    Role,
    SessionRecord,
    SystemEventRecord,
    TitleSource,
)
from runtime.store.protocol import MessageWindow, NewMessage

SESSION_COLUMNS = (
    "id, app_id, title, title_source, public_key, user_state, state, metadata, model, "
    "is_archived, is_processing, version, events_read_upto, last_event_id, created_at, "
    "updated_at, last_active_at, expires_at, legacy_id, client_id"
)
MESSAGE_COLUMNS = (
    "id, session_id, thread_id, seq, role, content, tool_calls, tool_results, is_interrupted, "
    "created_at"
)
# Columns a caller may set through `update_session`, and which of them hold JSON.
UPDATABLE = frozenset(
    {
        "title",
        "title_source",
        "public_key",
        "user_state",
        "state",
        "metadata",
        "model",
        "is_archived",
        "is_processing",
        "events_read_upto",
        "last_active_at",
        "expires_at",
        "client_id",
        "app_id",  # only by a claim (runtime/conversations.py), compared and set
    }
)
# Columns a compare-and-set may also compare.
EXPECTABLE = UPDATABLE | {"version"}
JSON_COLUMNS = frozenset({"user_state", "state", "metadata", "tool_calls", "tool_results"})

_APPEND = f"""
WITH thread AS (
    UPDATE threads SET next_seq = next_seq + 1, updated_at = $1
    WHERE id = $2 RETURNING next_seq - 1 AS seq
), session AS (
    UPDATE sessions SET version = version + 1, updated_at = $1, last_active_at = $1,
        is_processing = is_processing OR $10, expires_at = COALESCE($11, expires_at)
    WHERE id = $3 RETURNING {SESSION_COLUMNS}
), message AS (
    INSERT INTO messages ({MESSAGE_COLUMNS})
    SELECT $4, $3, $2, thread.seq, $5, $6, $7, $8, $9, $1 FROM thread
    RETURNING seq
), turn AS (
    INSERT INTO turns (session_id, thread_id, message_id, status, attempts, tool_started,
        partial_text, created_at, updated_at)
    SELECT $3, $2, $4, 'queued', 0, false, '', $1, $1 FROM message WHERE $12
)
SELECT message.seq AS message_seq, session.* FROM message, session
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
            _json(message.tool_calls),
            _json(message.tool_results),
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
        tool_calls=message.tool_calls,
        tool_results=message.tool_results,
        is_interrupted=message.is_interrupted,
        created_at=now,
    )
    return record, session_from_row(row)


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
        values.append(_json(value) if column in JSON_COLUMNS else value)
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
    return session_from_row(rows[0]) if rows else None


async def list_messages(
    client: BaseDBAsyncClient, thread_id: UUID, window: MessageWindow
) -> Page[MessageRecord]:
    values: list[Any] = [thread_id, window.limit + 1]
    conditions = ["thread_id = $1"]
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
    found = [message_from_row(row) for row in rows[: window.limit]]
    if window.from_end:
        return Page(items=found[::-1], has_next=window.before is not None, has_previous=more)
    return Page(items=found, has_next=more, has_previous=window.after is not None)


async def list_system_events(
    client: BaseDBAsyncClient, session_id: UUID, after_id: int, limit: int
) -> list[SystemEventRecord]:
    rows = await client.execute_query_dict(
        "SELECT id, session_id, kind, payload, created_at FROM system_events "
        "WHERE session_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        [session_id, after_id, limit],
    )
    return [
        SystemEventRecord(
            id=row["id"],
            session_id=_uuid(row["session_id"]),
            kind=row["kind"],
            payload=_from_json(row["payload"]),
            created_at=row["created_at"],
        )
        for row in rows
    ]


def session_from_row(row: Mapping[str, Any]) -> SessionRecord:
    return SessionRecord(
        id=_uuid(row["id"]),
        app=row["app_id"],
        title=row["title"],
        title_source=TitleSource(row["title_source"]),
        public_key=row["public_key"],
        user_state=_from_json(row["user_state"]),
        state=_from_json(row["state"]) or {},
        metadata=_from_json(row["metadata"]) or {},
        model=row["model"],
        is_archived=row["is_archived"],
        is_processing=row["is_processing"],
        version=row["version"],
        events_read_upto=row["events_read_upto"],
        last_event_id=row["last_event_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_active_at=row["last_active_at"],
        expires_at=row["expires_at"],
        legacy_id=row["legacy_id"],
        client_id=row["client_id"],
    )


def message_from_row(row: Mapping[str, Any]) -> MessageRecord:
    return MessageRecord(
        id=_uuid(row["id"]),
        session_id=_uuid(row["session_id"]),
        thread_id=_uuid(row["thread_id"]),
        seq=row["seq"],
        role=Role(row["role"]),
        content=row["content"],
        tool_calls=_from_json(row["tool_calls"]),
        tool_results=_from_json(row["tool_results"]),
        is_interrupted=row["is_interrupted"],
        created_at=row["created_at"],
    )


def _uuid(value: Any) -> UUID:
    # asyncpg's UUID class subclasses the standard one (equal, same hash): keep it.
    return value if isinstance(value, UUID) else UUID(str(value))


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
