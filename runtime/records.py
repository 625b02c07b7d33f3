"""Plain records the runtime passes around: what the store returns and the cache holds.

They are immutable so a cached record can be shared by concurrent readers; a change
produces a new record (`dataclasses.replace`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from uuid import UUID

JSONObject = dict[str, Any]
T = TypeVar("T")

DEFAULT_TITLE = "New chat"


class TitleSource(StrEnum):
    DEFAULT = "default"
    GENERATED = "generated"
    USER = "user"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: UUID
    app: str
    title: str | None
    title_source: TitleSource
    public_key: str | None
    user_state: JSONObject | None
    state: JSONObject
    metadata: JSONObject
    model: str | None
    is_archived: bool
    is_processing: bool
    version: int
    events_read_upto: int
    last_event_id: int
    created_at: datetime
    updated_at: datetime
    last_active_at: datetime
    expires_at: datetime | None
    # The text id a legacy client sent, when it is not a UUID (runtime/session_ids.py).
    legacy_id: str | None = None
    # The legacy client whose secrets and provider keys the session's turns use.
    client_id: str | None = None
    # Pinned: never expires by TTL, listed before the others (runtime/access.py).
    is_pinned: bool = False

    @property
    def public_id(self) -> str:
        """The id as its client knows it: the legacy text id, or the UUID."""
        return self.legacy_id or str(self.id)

    @property
    def display_title(self) -> str:
        return self.title or DEFAULT_TITLE


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    id: UUID
    session_id: UUID
    title: str | None
    is_primary: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: UUID
    session_id: UUID
    thread_id: UUID
    seq: int
    role: Role
    content: str
    tool_calls: list[JSONObject] | None
    tool_results: list[JSONObject] | None
    is_interrupted: bool
    created_at: datetime
    # The message this one follows in its thread's tree (None: the thread's first),
    # and whether it is on the thread's active path (runtime/branches.py).
    parent_id: UUID | None = None
    is_active: bool = True

    def as_json(self) -> JSONObject:
        """The message in events (`message_added`)."""
        return {
            "id": str(self.id),
            "thread_id": str(self.thread_id),
            "parent_id": None if self.parent_id is None else str(self.parent_id),
            "seq": self.seq,
            "role": self.role.value,
            "content": self.content,
            "tool_calls": self.tool_calls,
            "tool_results": self.tool_results,
            "is_interrupted": self.is_interrupted,
            "created_at": self.created_at.isoformat(),
        }


class TurnStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by the user, or by a crash after a tool started
    # Dropped from the queue by an interrupt, or its question left the active path
    # (another version of it was made meanwhile: runtime/branches.py).
    CANCELLED = "cancelled"


UNFINISHED_TURNS = (TurnStatus.QUEUED, TurnStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A stored turn: the user message it answers and how far it got."""

    id: int
    session_id: UUID
    thread_id: UUID
    message_id: UUID
    status: TurnStatus
    attempts: int
    tool_started: bool
    reply_id: UUID | None
    partial_text: str


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """A wallet's memory of one finished turn, in one app."""

    id: UUID
    app: str
    public_key: str
    source_session_id: UUID
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SummaryRecord:
    """A thread's messages up to `up_to_seq`, summarized for the model's context."""

    thread_id: UUID
    up_to_seq: int
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TurnUsage:
    """What went to the model for a turn's first call."""

    id: int
    message_id: UUID
    status: TurnStatus
    prompt_messages: int
    prompt_tokens: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One client's rating of one assistant message."""

    id: int
    app: str
    session_id: UUID
    message_id: UUID
    client_id: str
    thumbs: str | None  # "up" or "down"
    stars: int | None  # 1 to 5
    comment: str
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> JSONObject:
        return {
            "id": self.id,
            "message_id": str(self.message_id),
            "client_id": self.client_id,
            "thumbs": self.thumbs,
            "stars": self.stars,
            "comment": self.comment,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SystemEventRecord:
    id: int
    session_id: UUID
    kind: str
    payload: JSONObject
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An app key as stored (never its clear text): runtime/keys.py."""

    prefix: str
    apps: tuple[str, ...]
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list, oldest-to-newest within the page."""

    items: list[T]
    has_next: bool
    has_previous: bool
