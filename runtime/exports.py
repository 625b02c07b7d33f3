"""A session as one JSON document: everything stored about it, nothing secret.

Operators export with `server.py sessions export`; the document is self-describing
(`format`) so it can be archived, diffed or imported elsewhere. Client secrets and
provider keys are never part of it (they are the vault's, not the session's).
"""

from __future__ import annotations

from typing import Any

from runtime.events.envelope import utc_now
from runtime.records import JSONObject, SessionRecord, ThreadRecord
from runtime.store import MessageWindow, SessionStore

EXPORT_FORMAT = "confab.session/1"
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


async def export_session(store: SessionStore, record: SessionRecord) -> JSONObject:
    threads = [await _thread(store, thread) for thread in await store.list_threads(record.id)]
    events: list[JSONObject] = []
    after = 0
    while True:
        page = await store.list_system_events(record.id, after, PAGE)
        events.extend(
            {
                "id": event.id,
                "kind": event.kind,
                "payload": event.payload,
                "created_at": event.created_at.isoformat(),
            }
            for event in page
        )
        if len(page) < PAGE:
            break
        after = page[-1].id
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utc_now().isoformat(),
        "session": session_json(record),
        "threads": threads,
        "system_events": events,
        "feedback": [f.as_json() for f in await store.session_feedback(record.id, 10_000)],
        # Personal data too: the wallet memories this session left (runtime/memory.py).
        "memories": [
            {"id": str(m.id), "content": m.content, "created_at": m.created_at.isoformat()}
            for m in await store.session_memories(record.id)
        ],
    }


async def _thread(store: SessionStore, thread: ThreadRecord) -> dict[str, Any]:
    messages: list[JSONObject] = []
    after: int | None = None
    while True:
        page = await store.list_messages(thread.id, MessageWindow(limit=PAGE, after=after))
        messages.extend(message.as_json() for message in page.items)
        if not page.has_next or not page.items:
            break
        after = page.items[-1].seq
    return {
        "id": str(thread.id),
        "title": thread.title,
        "is_primary": thread.is_primary,
        "created_at": thread.created_at.isoformat(),
        "messages": messages,
    }
