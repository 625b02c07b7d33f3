"""Full-text search on PostgreSQL: the GIN indexes of models/migrations/0010_search.py
(a message's generated `search_vector`, titles' expression indexes), ranked with
`ts_rank` and highlighted with `ts_headline`, in one statement.

The query is parsed in the app's current language; rows carry the language they
were indexed in (`search_lang`), which `reindex` brings in step after a change.
"""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from runtime.store.search_protocol import MARK_END, MARK_START, HitKind, SearchKey, SearchQuery
from runtime.store.search_sql import ORDER, Parameters, admitted, after

# As in the index expressions (the planner matches them as written there).
_TITLE_VECTOR = "to_tsvector(coalesce({row}.search_lang, 'simple'), coalesce({row}.title, ''))"
_TOOL_NAMES = (
    "(SELECT string_agg(name, ' ') FROM jsonb_array_elements_text(jsonb_path_query_array("
    "coalesce(m.tool_calls, '[]') || coalesce(m.tool_results, '[]'), '$[*].tool_name')) name)"
)
_HEADLINE = (
    f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, ShortWord=2, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)
_TITLE_HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, HighlightAll=true"

_BRANCHES = {
    HitKind.MESSAGE: (
        "SELECT 'message' AS kind, m.id, m.session_id, m.thread_id, "
        "ts_rank(m.search_vector, q.query)::float8 AS rank "
        "FROM q, messages m JOIN sessions s ON s.id = m.session_id "
        "WHERE m.search_vector @@ q.query AND {conditions}"
    ),
    HitKind.SESSION: (
        "SELECT 'session' AS kind, s.id, s.id AS session_id, NULL::uuid AS thread_id, "
        f"ts_rank('{{{{1,1,1,1}}}}', {_TITLE_VECTOR.format(row='s')}, q.query)::float8 AS rank "
        f"FROM q, sessions s WHERE {_TITLE_VECTOR.format(row='s')} @@ q.query AND {{conditions}}"
    ),
    HitKind.THREAD: (
        "SELECT 'thread' AS kind, t.id, t.session_id, t.id AS thread_id, "
        f"ts_rank('{{{{1,1,1,1}}}}', {_TITLE_VECTOR.format(row='t')}, q.query)::float8 AS rank "
        "FROM q, threads t JOIN sessions s ON s.id = t.session_id "
        f"WHERE {_TITLE_VECTOR.format(row='t')} @@ q.query AND {{conditions}}"
    ),
}


def search_sql(query: SearchQuery) -> tuple[str, list[Any]]:
    p = Parameters(numbered=True, encode=lambda value: value)
    language, text = p(query.language), p(query.terms.websearch())
    branches = []
    for kind, template in _BRANCHES.items():
        conditions = admitted(kind, query, p)
        if conditions is not None:
            branches.append(template.format(conditions=conditions))
    keyset, limit = after(query.after, p), p(query.limit + 1)
    headline, title_headline = p(_HEADLINE), p(_TITLE_HEADLINE)
    sql = f"""
WITH q AS (SELECT websearch_to_tsquery({language}::regconfig, {text}) AS query),
hits AS ({" UNION ALL ".join(branches)}),
page AS (SELECT * FROM hits WHERE {keyset} {ORDER} LIMIT {limit})
SELECT page.*, CASE page.kind
    WHEN 'message' THEN (
        SELECT ts_headline(coalesce(m.search_lang, 'simple'),
            concat_ws(' ', nullif(m.content, ''), {_TOOL_NAMES}), q.query, {headline})
        FROM messages m WHERE m.id = page.id)
    WHEN 'session' THEN (
        SELECT ts_headline(coalesce(s.search_lang, 'simple'), s.title, q.query, {title_headline})
        FROM sessions s WHERE s.id = page.id)
    ELSE (
        SELECT ts_headline(coalesce(t.search_lang, 'simple'), t.title, q.query, {title_headline})
        FROM threads t WHERE t.id = page.id)
    END AS snippet
FROM page, q {ORDER}
"""
    return sql, p.values


async def search(client: BaseDBAsyncClient, query: SearchQuery) -> list[tuple[SearchKey, Any]]:
    """(key, row) per hit, up to `limit + 1` (one more tells there is a next page)."""
    sql, values = search_sql(query)
    rows = await client.execute_query_dict(sql, values)
    return [(SearchKey(row["rank"], HitKind(row["kind"]), row["id"]), row) for row in rows]


# Every row in the language its app names now (the trigger sets it on insert only).
_REINDEX = (
    "UPDATE sessions s SET search_lang = a.search_language::regconfig FROM apps a "
    "WHERE a.name = s.app_id AND s.search_lang IS DISTINCT FROM a.search_language::regconfig",
    "UPDATE threads t SET search_lang = s.search_lang FROM sessions s "
    "WHERE s.id = t.session_id AND t.search_lang IS DISTINCT FROM s.search_lang",
    "UPDATE messages m SET search_lang = s.search_lang FROM sessions s "
    "WHERE s.id = m.session_id AND m.search_lang IS DISTINCT FROM s.search_lang",
)


async def reindex(client: BaseDBAsyncClient) -> int:
    changed = 0
    for statement in _REINDEX:
        changed, _ = await client.execute_query(statement)
    return int(changed)
