"""Full-text search in the Tortoise store: each dialect's query
(runtime/store/postgres_search.py, sqlite_search.py), then the page's messages."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tortoise import connections
from tortoise.transactions import in_transaction

from models import Message
from runtime.records import MessageRecord, Page
from runtime.store import postgres_search, sqlite_search
from runtime.store.rows import MESSAGES, as_uuid
from runtime.store.search_protocol import HitKind, SearchQuery, SearchRow


class TortoiseSearch:
    async def search(self, query: SearchQuery) -> Page[SearchRow]:
        client = connections.get("default")
        if client.capabilities.dialect == "postgres":
            hits = await postgres_search.search(client, query)
        else:
            hits = await sqlite_search.search(client, query)
        shown = hits[: query.limit]
        messages = await _messages([key.id for key, _ in shown if key.kind is HitKind.MESSAGE])
        rows = []
        for key, row in shown:
            message = messages.get(key.id)
            if key.kind is HitKind.MESSAGE and message is None:
                continue  # deleted since the query
            rows.append(
                SearchRow(
                    key=key,
                    session_id=as_uuid(row["session_id"]),
                    thread_id=_optional_uuid(row["thread_id"]),
                    message=message,
                    snippet=row["snippet"] or "",
                )
            )
        return Page(
            items=rows, has_next=len(hits) > query.limit, has_previous=query.after is not None
        )

    async def reindex_search(self) -> int:
        client = connections.get("default")
        if client.capabilities.dialect == "postgres":
            return await postgres_search.reindex(client)
        async with in_transaction() as conn:
            return await sqlite_search.reindex(conn)


async def _messages(ids: list[UUID]) -> dict[UUID, MessageRecord]:
    if not ids:
        return {}
    records = (MESSAGES.from_model(row) for row in await Message.filter(id__in=ids))
    return {record.id: record for record in records}


def _optional_uuid(value: Any) -> UUID | None:
    return None if value is None else as_uuid(value)
