"""What the store is asked for full-text search (runtime/search.py), and answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol
from uuid import UUID

from runtime.records import MessageRecord, Page, Role
from runtime.search_terms import SearchTerms

# Around each matched word in a snippet: private-use characters no text search
# configuration keeps as a word, so no stored text can fake a highlight's bounds.
MARK_START = "\ue000"
MARK_END = "\ue001"


class HitKind(StrEnum):
    """What matched. (Values sort as the tie-break of equally ranked hits.)"""

    MESSAGE = "message"
    SESSION = "session"  # its title
    THREAD = "thread"  # its title


class SearchKey(NamedTuple):
    """A hit's place in the ranked order: rank (higher first), then kind and id."""

    rank: float
    kind: HitKind
    id: UUID


@dataclass(frozen=True, slots=True)
class SearchQuery:
    app: str
    terms: SearchTerms
    language: str  # the app's text search configuration (PostgreSQL)
    now: datetime  # sessions expired by then are left out
    limit: int
    after: SearchKey | None = None
    public_key: str | None = None
    thread_id: UUID | None = None  # this thread's messages and title only
    role: Role | None = None  # messages of this role only (no titles)
    archived: bool | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    all_versions: bool = False  # also messages off their thread's active path


@dataclass(frozen=True, slots=True)
class SearchRow:
    key: SearchKey
    session_id: UUID
    thread_id: UUID | None  # None for a session title
    message: MessageRecord | None  # the message, for a message hit
    snippet: str  # matched words between MARK_START and MARK_END


class SearchStore(Protocol):
    async def search(self, query: SearchQuery) -> Page[SearchRow]:
        """The query's next page of hits among the app's live sessions, best first."""
        ...

    async def reindex_search(self) -> int:
        """Index every row again (after an app's language changed, or a SQLite
        VACUUM renumbered rows); the number of messages indexed."""
        ...
