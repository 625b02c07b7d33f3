"""Full-text search on SQLite: the FTS5 tables of models/migrations/0010_search.py,
ranked by BM25 (negated, so higher is better as on PostgreSQL), snippets by FTS5's
own `snippet()` and `highlight()` for the page's hits only.

FTS5 rows are keyed by the tables' rowids; a VACUUM may renumber those, after which
`reindex` (`python server.py search reindex`) builds the index again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from models import Message
from runtime.store.search_protocol import MARK_END, MARK_START, HitKind, SearchKey, SearchQuery
from runtime.store.search_sql import ORDER, Parameters, admitted, after

_BRANCHES = {
    HitKind.MESSAGE: (
        "SELECT 'message' AS kind, m.id AS id, m.session_id AS session_id, "
        "m.thread_id AS thread_id, -bm25(message_search, 1.0, 0.5) AS rank, "
        "message_search.rowid AS rid FROM message_search "
        "JOIN messages m ON m.rowid = message_search.rowid "
        "JOIN sessions s ON s.id = m.session_id "
        "WHERE message_search MATCH {match} AND {conditions}"
    ),
    HitKind.SESSION: (
        "SELECT 'session' AS kind, s.id AS id, s.id AS session_id, NULL AS thread_id, "
        "-bm25(session_search) AS rank, session_search.rowid AS rid FROM session_search "
        "JOIN sessions s ON s.rowid = session_search.rowid "
        "WHERE session_search MATCH {match} AND {conditions}"
    ),
    HitKind.THREAD: (
        "SELECT 'thread' AS kind, t.id AS id, t.session_id AS session_id, "
        "t.id AS thread_id, -bm25(thread_search) AS rank, thread_search.rowid AS rid "
        "FROM thread_search JOIN threads t ON t.rowid = thread_search.rowid "
        "JOIN sessions s ON s.id = t.session_id "
        "WHERE thread_search MATCH {match} AND {conditions}"
    ),
}
_SNIPPETS = {
    HitKind.MESSAGE: "snippet(message_search, -1, ?, ?, '…', 24)",
    HitKind.SESSION: "highlight(session_search, 0, ?, ?)",
    HitKind.THREAD: "highlight(thread_search, 0, ?, ?)",
}


def _encode(value: Any) -> Any:
    """As the ORM stores it: UUIDs and datetimes as text (the datetime as
    `DatetimeField` writes it, so text order is time order)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return Message._meta.fields_map["created_at"].to_db_value(value, Message)
    if isinstance(value, bool):
        return int(value)
    return value


async def search(conn: BaseDBAsyncClient, query: SearchQuery) -> list[tuple[SearchKey, Any]]:
    """(key, row) per hit, up to `limit + 1`, each row with its `snippet`."""
    p = Parameters(numbered=False, encode=_encode)
    expression = query.terms.fts5()
    branches = []
    for kind, template in _BRANCHES.items():
        match = p(expression)
        conditions = admitted(kind, query, p)
        if conditions is None:
            p.values.pop()  # the branch is left out, and its match with it
            continue
        branches.append(template.format(match=match, conditions=conditions))
    sql = (
        f"SELECT * FROM ({' UNION ALL '.join(branches)}) "
        f"WHERE {after(query.after, p)} {ORDER} LIMIT {p(query.limit + 1)}"
    )
    rows = [dict(row) for row in await conn.execute_query_dict(sql, p.values)]
    snippets = await _snippets(conn, expression, rows)
    hits = []
    for row in rows:
        kind = HitKind(row["kind"])
        row["snippet"] = snippets.get((kind, row["rid"]), "")
        hits.append((SearchKey(row["rank"], kind, UUID(row["id"])), row))
    return hits


async def _snippets(
    conn: BaseDBAsyncClient, expression: str, rows: list[dict[str, Any]]
) -> dict[tuple[HitKind, int], str]:
    """FTS5's auxiliary functions answer only within a MATCH: one query per kind."""
    found: dict[tuple[HitKind, int], str] = {}
    for kind, function in _SNIPPETS.items():
        rowids = [row["rid"] for row in rows if row["kind"] == kind.value]
        if not rowids:
            continue
        table = f"{kind.value}_search"
        marks = ", ".join("?" * len(rowids))
        answered = await conn.execute_query_dict(
            f"SELECT rowid AS rid, {function} AS snippet FROM {table} "
            f"WHERE {table} MATCH ? AND rowid IN ({marks})",
            [MARK_START, MARK_END, expression, *rowids],
        )
        found.update({(kind, row["rid"]): row["snippet"] for row in answered})
    return found


# A message's tool names, as models/migrations/0010_search.py's triggers index them.
_TOOLS = (
    "trim(coalesce((SELECT group_concat(json_extract(value, '$.tool_name'), ' ') "
    "FROM json_each(messages.tool_calls)), '') || ' ' || "
    "coalesce((SELECT group_concat(json_extract(value, '$.tool_name'), ' ') "
    "FROM json_each(messages.tool_results)), ''))"
)
_REINDEX = (
    "DELETE FROM message_search",
    f"INSERT INTO message_search(rowid, content, tools) SELECT rowid, content, {_TOOLS} "
    "FROM messages",
    "DELETE FROM session_search",
    "INSERT INTO session_search(rowid, title) SELECT rowid, title FROM sessions "
    "WHERE title IS NOT NULL",
    "DELETE FROM thread_search",
    "INSERT INTO thread_search(rowid, title) SELECT rowid, title FROM threads "
    "WHERE title IS NOT NULL",
)


async def reindex(conn: BaseDBAsyncClient) -> int:
    """Within the caller's transaction: the index is never seen half built."""
    for statement in _REINDEX:
        await conn.execute_query(statement)
    rows = await conn.execute_query_dict("SELECT count(*) AS n FROM message_search")
    return int(rows[0]["n"])
