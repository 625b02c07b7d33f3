"""Importing an exported session (runtime/exports.py) as a new session of the
caller's app, on this instance or another.

The whole document is checked before anything is written; a bad one is refused
with the path of its first error (`threads[0].messages[3].role: ...`). Then the
session is written: its fields, threads, messages in order, system events,
ratings (their message ids mapped to the new messages) and wallet memories. If a
write fails midway the new session is deleted again, so nothing half-written
stays. Exported again, it reads the same apart from every id (session, threads,
messages, events, ratings, memories: new ones) and every time (`exported_at`, and
each `created_at`, `updated_at`, `last_active_at`, `expires_at`: the import's).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from runtime.apps import AppRegistry, Caller
from runtime.conversations import Conversations
from runtime.errors import InvalidInput
from runtime.feedback import COMMENT_MAX, THUMBS
from runtime.records import Role, SessionRecord, TitleSource
from runtime.sessions import SessionHost
from runtime.store import NewMessage, SessionStore
from runtime.validation import json_object_arg, public_key_arg

logger = logging.getLogger(__name__)

IMPORTABLE = ("confab.session/1", "confab.session/2")
MAX_THREADS = 1_000
MAX_MESSAGES = 200_000
MAX_EVENTS = 100_000
CONTENT_MAX_CHARS = 1024 * 1024
MEMORY_MAX_CHARS = 2_000


@dataclass
class _Message:
    source_id: str | None
    role: Role
    content: str
    tool_calls: list[dict[str, Any]] | None
    tool_results: list[dict[str, Any]] | None
    is_interrupted: bool


@dataclass
class _Thread:
    title: str | None
    is_primary: bool
    messages: list[_Message]


@dataclass
class Plan:
    """A checked document, ready to write."""

    session: dict[str, Any]
    threads: list[_Thread]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)


class SessionImports:
    def __init__(
        self,
        store: SessionStore,
        host: SessionHost,
        conversations: Conversations,
        apps: AppRegistry,
    ) -> None:
        self._store = store
        self._host = host
        self._conversations = conversations
        self._apps = apps

    async def run(self, caller: Caller, document: object) -> SessionRecord:
        plan = check(document)
        model = plan.session["model"]
        if model is not None and model not in self._apps.get(caller.app).model.models:
            raise InvalidInput("session.model", f"{model!r} is not a model of this app")
        record, _ = await self._conversations.create_session(
            caller,
            uuid4(),
            public_key=plan.session["public_key"],
            title=plan.session["title"],
            metadata=plan.session["metadata"],
            user_state=plan.session["user_state"],
        )
        try:
            await self._write(caller, record, plan)
        except BaseException:
            logger.warning("import into session %s failed midway: undone", record.id)
            await self._store.delete_session(record.id)
            self._host.unload(record.id)
            raise
        loaded = await self._host.load(record.id)
        assert loaded is not None
        return loaded

    async def _write(self, caller: Caller, record: SessionRecord, plan: Plan) -> None:
        fields = {
            "title_source": plan.session["title_source"],
            "state": plan.session["state"],
            "model": plan.session["model"],
            "is_archived": plan.session["is_archived"],
            "is_pinned": plan.session["is_pinned"],
        }
        if fields["is_pinned"]:
            fields["expires_at"] = None
        await self._store.update_session(record.id, fields)
        ids: dict[str, UUID] = {}
        for thread in plan.threads:
            thread_id = record.id
            if not thread.is_primary:
                created = await self._conversations.create_thread(
                    caller, record.id, title=thread.title
                )
                thread_id = created.id
            elif thread.title is not None:
                await self._conversations.rename_thread(caller, thread_id, thread.title)
            for message in thread.messages:
                stored, _ = await self._store.append_message(
                    NewMessage(
                        session_id=record.id,
                        thread_id=thread_id,
                        role=message.role,
                        content=message.content,
                        tool_calls=message.tool_calls,
                        tool_results=message.tool_results,
                        is_interrupted=message.is_interrupted,
                    )
                )
                if message.source_id is not None:
                    ids[message.source_id] = stored.id
        for kind, payload in plan.events:
            await self._store.add_system_event(record.id, kind, payload)
        for rating in plan.feedback:
            await self._store.rate(
                caller.app,
                record.id,
                ids[rating["message_id"]],
                rating["client_id"],
                (rating["thumbs"], rating["stars"]),
                rating["comment"],
            )
        keep = self._apps.get(caller.app).keep_memories
        for content in plan.memories:
            key = plan.session["public_key"]
            await self._store.add_memory(caller.app, key, record.id, content, cascade=not keep)


def check(document: object) -> Plan:
    """The document as a plan, or `InvalidInput` naming its first error's path."""
    root = _object("document", document)
    if root.get("format") not in IMPORTABLE:
        raise InvalidInput(
            "format",
            f"must be one of {', '.join(IMPORTABLE)}, got {str(root.get('format'))[:40]!r}",
        )
    session = _session(_object("session", root.get("session")))
    threads = _list("threads", root.get("threads"), MAX_THREADS)
    plan = Plan(session=session, threads=[])
    total = 0
    for t, raw in enumerate(threads):
        where = f"threads[{t}]"
        thread = _object(where, raw)
        messages = _list(f"{where}.messages", thread.get("messages"), MAX_MESSAGES)
        total += len(messages)
        if total > MAX_MESSAGES:
            raise InvalidInput(where, f"more than {MAX_MESSAGES} messages in all")
        plan.threads.append(
            _Thread(
                title=_text(f"{where}.title", thread.get("title"), 200, optional=True),
                is_primary=_flag(f"{where}.is_primary", thread.get("is_primary")),
                messages=[
                    _message(f"{where}.messages[{m}]", raw) for m, raw in enumerate(messages)
                ],
            )
        )
    if sum(t.is_primary for t in plan.threads) != 1:
        raise InvalidInput("threads", "must have exactly one primary thread")
    for e, raw in enumerate(_list("system_events", root.get("system_events", []), MAX_EVENTS)):
        event = _object(f"system_events[{e}]", raw)
        kind = _text(f"system_events[{e}].kind", event.get("kind"), 64)
        plan.events.append(
            (kind, json_object_arg(f"system_events[{e}].payload", event.get("payload")))
        )
    known = {m.source_id for t in plan.threads for m in t.messages if m.role is Role.ASSISTANT}
    for f, raw in enumerate(_list("feedback", root.get("feedback", []), MAX_MESSAGES)):
        plan.feedback.append(_rating(f"feedback[{f}]", raw, known))
    memories = _list("memories", root.get("memories", []), MAX_MESSAGES)
    if memories and session["public_key"] is None:
        raise InvalidInput("memories", "a session without a wallet has no memories")
    for n, raw in enumerate(memories):
        memory = _object(f"memories[{n}]", raw)
        plan.memories.append(
            _text(f"memories[{n}].content", memory.get("content"), MEMORY_MAX_CHARS)
        )
    return plan


def _session(raw: dict[str, Any]) -> dict[str, Any]:
    key = raw.get("public_key")
    source = raw.get("title_source", "default")
    if source not in {s.value for s in TitleSource}:
        raise InvalidInput(
            "session.title_source", f"must be one of {', '.join(s.value for s in TitleSource)}"
        )
    user_state = raw.get("user_state")
    return {
        "title": _text("session.title", raw.get("title"), 200, optional=True),
        "title_source": source,
        "public_key": None
        if key is None
        else public_key_arg("session.public_key", _text("session.public_key", key, 64)),
        "user_state": None
        if user_state is None
        else json_object_arg("session.user_state", user_state),
        "state": json_object_arg("session.state", raw.get("state", {})),
        "metadata": json_object_arg("session.metadata", raw.get("metadata", {})),
        "model": _text("session.model", raw.get("model"), 128, optional=True),
        "is_archived": _flag("session.is_archived", raw.get("is_archived", False)),
        "is_pinned": _flag("session.is_pinned", raw.get("is_pinned", False)),
    }


def _message(where: str, raw: object) -> _Message:
    message = _object(where, raw)
    role = message.get("role")
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"{where}.role", f"must be one of {', '.join(r.value for r in Role)}")
    source = message.get("id")
    return _Message(
        source_id=None if source is None else _text(f"{where}.id", source, 128),
        role=Role(role),
        content=_text(
            f"{where}.content", message.get("content", ""), CONTENT_MAX_CHARS, empty=True
        ),
        tool_calls=_entries(f"{where}.tool_calls", message.get("tool_calls")),
        tool_results=_entries(f"{where}.tool_results", message.get("tool_results")),
        is_interrupted=_flag(f"{where}.is_interrupted", message.get("is_interrupted", False)),
    )


def _entries(where: str, value: object) -> list[dict[str, Any]] | None:
    """Tool calls or results: objects with a call id and a tool name."""
    if value is None:
        return None
    entries = _list(where, value, 64)
    for n, raw in enumerate(entries):
        entry = json_object_arg(f"{where}[{n}]", raw)
        _text(f"{where}[{n}].call_id", entry.get("call_id"), 128)
        _text(f"{where}[{n}].tool_name", entry.get("tool_name"), 128)
    return entries


def _rating(where: str, raw: object, known: set[str | None]) -> dict[str, Any]:
    rating = _object(where, raw)
    message_id = rating.get("message_id")
    if message_id not in known:
        raise InvalidInput(f"{where}.message_id", "names no assistant message of this document")
    thumbs, stars = rating.get("thumbs"), rating.get("stars")
    if (thumbs is None) == (stars is None):
        raise InvalidInput(where, "must have exactly one of thumbs or stars")
    if thumbs is not None and thumbs not in THUMBS:
        raise InvalidInput(f"{where}.thumbs", "must be up or down")
    if stars is not None and (isinstance(stars, bool) or stars not in range(1, 6)):
        raise InvalidInput(f"{where}.stars", "must be 1 to 5")
    return {
        "message_id": message_id,
        "client_id": _text(f"{where}.client_id", rating.get("client_id"), 128),
        "thumbs": thumbs,
        "stars": stars,
        "comment": _text(f"{where}.comment", rating.get("comment", ""), COMMENT_MAX, empty=True),
    }


def _object(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(where, "must be a JSON object")
    return dict(value)


def _list(where: str, value: object, most: int) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(where, "must be a JSON array")
    if len(value) > most:
        raise InvalidInput(where, f"must have at most {most} entries, has {len(value)}")
    return value


def _text(
    where: str, value: object, most: int, *, optional: bool = False, empty: bool = False
) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise InvalidInput(where, "must be a non-empty string" if not empty else "must be a string")
    if len(value) > most:
        raise InvalidInput(where, f"must be at most {most} characters")
    if "\x00" in value:
        raise InvalidInput(where, "must not contain NUL characters")
    return value


def _flag(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(where, "must be true or false")
    return value
