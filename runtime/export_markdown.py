"""A session as Markdown, for people: the title, then each thread's messages in
order, tool calls and their results readable (the call's arguments and the result
as JSON blocks), system events and ratings at the end. Streamed like the JSON
document (runtime/exports.py), a page of messages at a time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from runtime.exports import system_events, thread_messages
from runtime.records import MessageRecord, Role, SessionRecord
from runtime.store import SessionStore

_SPEAKER = {
    Role.USER: "User",
    Role.ASSISTANT: "Assistant",
    Role.TOOL: "Tool",
    Role.SYSTEM: "System",
}


async def markdown_chunks(store: SessionStore, record: SessionRecord) -> AsyncIterator[str]:
    yield f"# {_line(record.display_title)}\n\n"
    facts = [f"Session `{record.public_id}`", f"app `{record.app}`"]
    if record.public_key:
        facts.append(f"wallet `{record.public_key}`")
    facts.append(f"created {record.created_at.isoformat(timespec='seconds')}")
    yield " · ".join(facts) + "\n"
    threads = await store.list_threads(record.id)
    for thread in sorted(threads, key=lambda t: not t.is_primary):
        if len(threads) > 1:
            name = thread.title or ("main" if thread.is_primary else "untitled")
            yield f"\n## Thread: {_line(name)}\n"
        async for message in thread_messages(store, thread):
            yield _message(message)
    notes = [event async for event in system_events(store, record)]
    if notes:
        yield "\n## System events\n\n"
        for event in notes:
            yield f"- {event['created_at'][:19]} `{event['kind']}`: {_inline(event['payload'])}\n"
    feedback = await store.session_feedback(record.id, 100_000)
    if feedback:
        yield "\n## Feedback\n\n"
        for rating in feedback:
            given = f"thumbs {rating.thumbs}" if rating.thumbs else f"{rating.stars}/5"
            said = f": {_line(rating.comment)}" if rating.comment else ""
            yield f"- `{rating.client_id}` on message `{rating.message_id}`: {given}{said}\n"


def _message(message: MessageRecord) -> str:
    marks = " (interrupted)" if message.is_interrupted else ""
    head = f"\n**{_SPEAKER.get(message.role, message.role.value)}**{marks}\n\n"
    if message.role is Role.TOOL:
        parts = [
            f"Result of `{r.get('tool_name', 'tool')}` ({r.get('call_id', '')}):\n\n"
            + _block({k: v for k, v in r.items() if k not in ("call_id", "tool_name")})
            for r in message.tool_results or []
        ]
        return head + "\n".join(parts)
    parts = [f"{message.content}\n"] if message.content else []
    parts += [
        f"Calls `{call.get('tool_name', 'tool')}` ({call.get('call_id', '')}) with:\n\n"
        + _block(call.get("arguments", {}))
        for call in message.tool_calls or []
    ]
    return head + "\n".join(parts)


def _block(value: Any) -> str:
    # Keys sorted: PostgreSQL's jsonb keeps its own order, SQLite the writer's.
    body = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    body = body.replace("```", "`\u200b``")
    return f"```json\n{body}\n```\n"


def _inline(value: Any) -> str:
    return _line(json.dumps(value, ensure_ascii=False))


def _line(text: str) -> str:
    return " ".join(text.split())
