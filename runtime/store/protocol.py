"""The store protocol: everything the runtime asks of durable storage.

The Tortoise implementation serves SQLite (`sqlite://:memory:` for tests, a file
for the embedded mode) and PostgreSQL; a custom backend implements this protocol,
apps and keys included (`AppKeyStore`), and needs no Tortoise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from runtime.records import (
    FeedbackRecord,
    JSONObject,
    KeyInfo,
    MemoryRecord,
    MessageRecord,
    Page,
    Role,
    SessionRecord,
    SummaryRecord,
    SystemEventRecord,
    ThreadRecord,
    TurnRecord,
    TurnStatus,
    TurnUsage,
)
from runtime.store.search_protocol import SearchStore


@dataclass(frozen=True, slots=True)
class SessionQuery:
    apps: tuple[str, ...]  # one app, or several for a keyless wallet listing
    public_key: str | None = None
    archived: bool | None = None
    limit: int = 50
    # Keyset cursor: sessions strictly after this (is_pinned, last_active_at, id) in
    # list order (pinned first, then the most recently active).
    after: tuple[bool, datetime, UUID] | None = None
    # Only sessions last active before this time (operators' clean-ups).
    active_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageWindow:
    """Either the first `limit` after `after`, or the last `limit` before `before`."""

    limit: int
    after: int | None = None
    before: int | None = None
    from_end: bool = False


@dataclass(frozen=True, slots=True)
class MessageTail:
    """The newest messages of a session's primary thread as they were at one session
    version. Every message append bumps its session's version in the same write, so
    while the session is at `version` the tail is exact: the session host keeps it
    beside the cached session and serves recent-message windows from memory."""

    version: int
    messages: tuple[MessageRecord, ...]  # oldest first
    complete: bool  # no older message exists
    capacity: int  # how many it holds at most (the newest ones)

    def covers(self, limit: int) -> bool:
        return self.complete or len(self.messages) >= limit

    def page(self, limit: int) -> Page[MessageRecord]:
        """The last `limit` messages, as `MessageWindow(limit, from_end=True)` pages."""
        items = list(self.messages[-limit:])
        return Page(
            items=items,
            has_next=False,
            has_previous=len(self.messages) > limit or not self.complete,
        )

    def after(self, version: int, appended: MessageRecord | None) -> MessageTail:
        """The tail at `version`, one write later: with `appended` if that write added
        a message to the primary thread."""
        if appended is None:
            return MessageTail(version, self.messages, self.complete, self.capacity)
        messages = (*self.messages, appended)
        complete = self.complete and len(messages) <= self.capacity
        return MessageTail(version, messages[-self.capacity :], complete, self.capacity)


@dataclass(frozen=True, slots=True)
class NewMessage:
    session_id: UUID
    thread_id: UUID
    role: Role
    content: str
    tool_calls: list[JSONObject] | None = None
    tool_results: list[JSONObject] | None = None
    is_interrupted: bool = False
    id: UUID | None = None  # chosen by the caller when clients already know it (streaming)


class AppRow(NamedTuple):
    """An app as stored: what the database itself needs of its configuration."""

    name: str
    display_name: str
    # The text search configuration new rows of the app are indexed with (PostgreSQL).
    search_language: str = "english"


class AppKeyStore(Protocol):
    """The apps (tenants) and their keys (runtime/apps.py, runtime/keys.py)."""

    async def sync_apps(self, apps: Sequence[AppRow]) -> None:
        """Make sure each app has its row, the rest of it updated: one upsert, never
        check-then-insert (replicas start together)."""
        ...

    async def app_names(self) -> list[str]:
        """Every stored app, configured or not (any more)."""
        ...

    async def create_key(
        self, prefix: str, key_hash: str, label: str, apps: Sequence[str]
    ) -> KeyInfo:
        """Store a key covering `apps`; `NotFound` naming those that do not exist."""
        ...

    async def list_keys(self) -> list[KeyInfo]:
        """Every key, oldest first."""
        ...

    async def find_key(self, key_hash: str) -> KeyInfo | None:
        """The key with this hash, revoked or not."""
        ...

    async def touch_key(self, prefix: str, used_at: datetime) -> None:
        """Record when the key was last used."""
        ...

    async def revoke_key(self, prefix: str, revoked_at: datetime) -> KeyInfo | None:
        """Revoke the key (a revoked one keeps its time); None if there is none."""
        ...

    async def unrevoked_keys(self, prefixes: Sequence[str]) -> set[str]:
        """Which of these prefixes name keys that exist and are not revoked."""
        ...


class MemoryStore(Protocol):
    """Wallet memories and thread summaries (runtime/memory.py, runtime/turns/context.py)."""

    async def add_memory(
        self, app: str, public_key: str, session_id: UUID, content: str, *, cascade: bool
    ) -> MemoryRecord:
        """`cascade`: the memory goes when its session is deleted."""
        ...

    async def wallet_memories(self, app: str, public_key: str, limit: int) -> list[MemoryRecord]:
        """Newest first."""
        ...

    async def session_memories(self, session_id: UUID) -> list[MemoryRecord]:
        """Those that came from this session, oldest first."""
        ...

    async def delete_memory(self, app: str, memory_id: UUID) -> bool:
        """Only a memory of this app; False if there is none."""
        ...

    async def delete_wallet_memories(self, app: str, public_key: str) -> int: ...

    async def latest_summary(self, thread_id: UUID) -> SummaryRecord | None: ...

    async def add_summary(
        self, session_id: UUID, thread_id: UUID, up_to_seq: int, content: str
    ) -> SummaryRecord: ...

    async def turn_usage(self, session_id: UUID, limit: int) -> list[TurnUsage]:
        """The newest `limit` turns, oldest first."""
        ...


class FeedbackStore(Protocol):
    """Ratings of assistant messages (runtime/feedback.py)."""

    async def rate(
        self,
        app: str,
        session_id: UUID,
        message_id: UUID,
        client_id: str,
        rating: tuple[str | None, int | None],
        comment: str,
    ) -> FeedbackRecord:
        """The client's rating of the message (thumbs, stars), stored or replaced."""
        ...

    async def session_feedback(self, session_id: UUID, limit: int) -> list[FeedbackRecord]:
        """Oldest first."""
        ...

    async def app_feedback(self, app: str, limit: int, before: int | None) -> list[FeedbackRecord]:
        """Newest first, those with an id below `before`."""
        ...


class BranchStore(Protocol):
    """The message tree (runtime/branches.py, runtime/store/tortoise_branches.py)."""

    async def siblings(self, thread_id: UUID, parent_id: UUID | None) -> list[UUID]:
        """The thread's messages that follow `parent_id` (a message's versions, itself
        included), oldest first."""
        ...

    async def ancestry(self, message_id: UUID, most: int) -> list[UUID]:
        """The message and up to `most` ancestors, nearest first."""
        ...

    async def branch_message(
        self,
        sibling_of: MessageRecord,
        message: NewMessage,
        *,
        mark_processing: bool,
        queue_turn: bool,
    ) -> tuple[MessageRecord, SessionRecord]:
        """`message` as a new, selected version of `sibling_of`: the active path ends
        with it; the session's version is bumped."""
        ...

    async def rewind(self, question: MessageRecord) -> SessionRecord:
        """The active path ends at `question` (its answers kept, unchosen), and a turn
        answering it again is queued; the session, marked processing."""
        ...

    async def switch_branch(
        self, message: MessageRecord, chain: list[UUID]
    ) -> tuple[SessionRecord, UUID | None]:
        """The active path through `message` (`chain`: it and its ancestors), down its
        chosen descendants; the session, and the path's new leaf."""
        ...


class SessionStore(AppKeyStore, MemoryStore, FeedbackStore, SearchStore, BranchStore, Protocol):
    async def ping(self) -> None: ...

    async def get_session(self, session_id: UUID) -> SessionRecord | None: ...

    async def create_session(
        self, session_id: UUID, app: str, fields: Mapping[str, Any]
    ) -> tuple[SessionRecord, bool]:
        """Create with a primary thread; if the id exists, return it and False."""
        ...

    async def update_session(
        self,
        session_id: UUID,
        fields: Mapping[str, Any],
        expect: Mapping[str, Any] | None = None,
    ) -> SessionRecord | None:
        """Apply `fields`, bump the version and `updated_at`; None if gone or if the
        row does not match `expect` (a compare-and-set)."""
        ...

    async def delete_session(self, session_id: UUID) -> bool: ...

    async def has_messages(self, session_id: UUID) -> bool:
        """Whether any thread of the session holds a message."""
        ...

    async def list_sessions(self, query: SessionQuery) -> Page[SessionRecord]: ...

    async def get_thread(self, thread_id: UUID) -> ThreadRecord | None: ...

    async def list_threads(self, session_id: UUID) -> list[ThreadRecord]: ...

    async def create_thread(
        self, session_id: UUID, thread_id: UUID, title: str | None
    ) -> ThreadRecord | None:
        """None when the id is already taken."""
        ...

    async def rename_thread(self, thread_id: UUID, title: str) -> ThreadRecord | None: ...

    async def delete_thread(self, thread_id: UUID) -> bool: ...

    async def append_message(
        self,
        message: NewMessage,
        *,
        mark_processing: bool = False,
        expires_at: datetime | None = None,
        queue_turn: bool = False,
    ) -> tuple[MessageRecord, SessionRecord]:
        """Persist with the thread's next sequence number; touches the session (and in
        the same write, with `mark_processing`, sets its processing flag, with
        `expires_at` pushes its expiry back, and with `queue_turn` stores a queued
        turn for the message)."""
        ...

    async def get_message(self, message_id: UUID) -> MessageRecord | None: ...

    async def unfinished_turns(self, session_id: UUID, limit: int) -> list[TurnRecord]:
        """The session's queued and running turns, oldest first."""
        ...

    async def update_turn(
        self, turn_id: int, fields: Mapping[str, Any], expect: TurnStatus | None = None
    ) -> bool:
        """Set `fields` (status, attempts, tool_started, reply_id, partial_text); with
        `expect`, only if the turn has that status (a compare-and-set)."""
        ...

    async def cancel_queued_turns(self, session_id: UUID) -> int: ...

    async def expired_session_ids(self, now: datetime, limit: int) -> list[UUID]: ...

    async def delete_sessions(self, session_ids: list[UUID]) -> int:
        """Delete with threads, messages and system events; returns how many went."""
        ...

    async def processing_session_ids(self, limit: int) -> list[UUID]:
        """Sessions marked processing (for crash recovery)."""
        ...

    async def list_messages(
        self, thread_id: UUID, window: MessageWindow
    ) -> Page[MessageRecord]: ...

    async def message_tail(self, session_id: UUID, limit: int) -> MessageTail | None:
        """The newest `limit` messages of the session's primary thread and the session's
        version, read at one moment (one statement or one transaction: no write may
        fall between them); None if the session is gone."""
        ...

    async def add_system_event(
        self, session_id: UUID, kind: str, payload: JSONObject
    ) -> tuple[SystemEventRecord, SessionRecord | None]:
        """The stored event, and its session as it is now: `last_event_id` set to the
        event's id, in the same transaction (None if the session is gone)."""
        ...

    async def list_system_events(
        self, session_id: UUID, after_id: int = 0, limit: int = 1000
    ) -> list[SystemEventRecord]: ...
