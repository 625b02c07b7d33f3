"""A session as one JSON document: everything stored about it, nothing secret.

The document (`confab.session/2`, docs/export-format.md) holds the session (title
and its source, wallet, user and agent state, metadata, pin), every thread with
its messages (tool calls and results), the system events, the ratings and the
wallet memories the session left. It is written as a stream of text chunks, a
page of rows at a time, so a session of any length exports in constant memory
(REST and the CLI stream it; GraphQL answers it whole, up to a bound). Client
secrets and provider keys are never part of it (they are the vault's). Markdown
for people: runtime/export_markdown.py. Importing it back: runtime/imports.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from runtime.events.envelope import utc_now
from runtime.records import JSONObject, MessageRecord, SessionRecord, ThreadRecord
from runtime.store import MessageWindow, SessionStore

EXPORT_FORMAT = "confab.session/2"
PAGE = 500


def session_json(record: SessionRecord) -> JSONObject:
    return {
        "id": str(record.id),
        "legacy_id": record.legacy_id,
        "app": record.app,
        "title": record.title,
        "title_source": record.title_source.value,
        "public_key": record.public_key,
        "client_id": record.client_id,
        "user_state": record.user_state,
        "state": record.state,
        "metadata": record.metadata,
        "model": record.model,
        "is_archived": record.is_archived,
        "is_pinned": record.is_pinned,
        "is_processing": record.is_processing,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "last_active_at": record.last_active_at.isoformat(),
        "expires_at": None if record.expires_at is None else record.expires_at.isoformat(),
    }


def _exported(message: MessageRecord) -> JSONObject:
    """A message as `confab.session/2` has it: a thread is its active path, in order
    (the tree's other branches are not part of this format)."""
    shown = message.as_json()
    del shown["parent_id"]
    return shown


async def export_chunks(store: SessionStore, record: SessionRecord) -> AsyncIterator[str]:
    """The document as text chunks, in order; joined, one JSON object."""
    yield f'{{"format": {_dump(EXPORT_FORMAT)}, "exported_at": {_dump(utc_now().isoformat())}'
    yield f', "session": {_dump(session_json(record))}, "threads": ['
    for index, thread in enumerate(await store.list_threads(record.id)):
        yield ("" if index == 0 else ", ") + _dump(thread_json(thread))[:-1] + ', "messages": ['
        first = True
        async for message in thread_messages(store, thread):
            yield ("" if first else ", ") + _dump(_exported(message))
            first = False
        yield "]}"
    yield '], "system_events": ['
    first = True
    async for event in system_events(store, record):
        yield ("" if first else ", ") + _dump(event)
        first = False
    feedback = [f.as_json() for f in await store.session_feedback(record.id, 100_000)]
    yield f'], "feedback": {_dump(feedback)}'
    # Personal data too: the wallet memories this session left (runtime/memory.py).
    memories = [
        {"id": str(m.id), "content": m.content, "created_at": m.created_at.isoformat()}
        for m in await store.session_memories(record.id)
    ]
    yield f', "memories": {_dump(memories)}}}'


async def export_session(store: SessionStore, record: SessionRecord) -> JSONObject:
    """The whole document at once (operators' tools and tests; REST streams it)."""
    document: JSONObject = json.loads("".join([c async for c in export_chunks(store, record)]))
    return document


def thread_json(thread: ThreadRecord) -> JSONObject:
    return {
        "id": str(thread.id),
        "title": thread.title,
        "is_primary": thread.is_primary,
        "created_at": thread.created_at.isoformat(),
    }


async def thread_messages(
    store: SessionStore, thread: ThreadRecord
) -> AsyncIterator[MessageRecord]:
    after: int | None = None
    while True:
        page = await store.list_messages(thread.id, MessageWindow(limit=PAGE, after=after))
        for message in page.items:
            yield message
        if not page.has_next or not page.items:
            return
        after = page.items[-1].seq


async def system_events(store: SessionStore, record: SessionRecord) -> AsyncIterator[JSONObject]:
    after = 0
    while True:
        page = await store.list_system_events(record.id, after, PAGE)
        for event in page:
            yield {
                "id": event.id,
                "kind": event.kind,
                "payload": event.payload,
                "created_at": event.created_at.isoformat(),
            }
        if len(page) < PAGE:
            return
        after = page[-1].id


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
