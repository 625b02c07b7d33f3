"""The part of a search's SQL both databases share: which rows a query's filters
and the caller's app let through, for each kind of hit, and the keyset order.

Each dialect writes its own matching and ranking (runtime/store/postgres_search.py,
sqlite_search.py) around these conditions, in placeholders of its own style and
with values encoded as it stores them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.store.search_protocol import HitKind, SearchKey, SearchQuery

Encode = Callable[[Any], Any]


class Parameters:
    """Values in the order their placeholders appear: `$n` (asyncpg) or `?`."""

    def __init__(self, numbered: bool, encode: Encode) -> None:
        self.values: list[Any] = []
        self._numbered = numbered
        self._encode = encode

    def __call__(self, value: Any) -> str:
        self.values.append(self._encode(value))
        return f"${len(self.values)}" if self._numbered else "?"


def admitted(kind: HitKind, query: SearchQuery, p: Parameters) -> str | None:
    """The WHERE conditions (besides the match) for hits of `kind`, the session as
    `s`, the thread as `t`, the message as `m`; None when the filters leave no hit
    of this kind (a role is a message's; a thread's title is not the session's)."""
    if kind is not HitKind.MESSAGE and query.role is not None:
        return None
    if kind is HitKind.SESSION and query.thread_id is not None:
        return None
    # The visibility rule of runtime/access.py (`visible`), in SQL: the caller's app,
    # and not expired (a pinned session never is).
    conditions = [
        f"s.app_id = {p(query.app)}",
        f"(s.is_pinned OR s.expires_at IS NULL OR s.expires_at > {p(query.now)})",
    ]
    if query.public_key is not None:
        conditions.append(f"s.public_key = {p(query.public_key)}")
    if query.archived is not None:
        conditions.append(f"s.is_archived = {p(query.archived)}")
    row = {HitKind.MESSAGE: "m", HitKind.SESSION: "s", HitKind.THREAD: "t"}[kind]
    if query.thread_id is not None:
        column = "m.thread_id" if kind is HitKind.MESSAGE else "t.id"
        conditions.append(f"{column} = {p(query.thread_id)}")
    if query.role is not None:
        conditions.append(f"m.role = {p(query.role.value)}")
    if kind is HitKind.MESSAGE and not query.all_versions:
        conditions.append("m.is_active")  # the active path (runtime/branches.py)
    if query.since is not None:
        conditions.append(f"{row}.created_at >= {p(query.since)}")
    if query.until is not None:
        conditions.append(f"{row}.created_at < {p(query.until)}")
    return " AND ".join(conditions)


def after(key: SearchKey | None, p: Parameters) -> str:
    """Hits strictly after `key` in the order `rank DESC, kind, id`."""
    if key is None:
        return "TRUE"
    # Placeholders are taken in the order they appear (`?` counts by position).
    below = f"rank < {p(key.rank)}"
    same_rank = f"rank = {p(key.rank)}"
    later_kind = f"kind > {p(key.kind.value)}"
    same_kind = f"kind = {p(key.kind.value)}"
    later_id = f"id > {p(key.id)}"
    return f"({below} OR ({same_rank} AND ({later_kind} OR ({same_kind} AND {later_id}))))"


ORDER = "ORDER BY rank DESC, kind, id"
