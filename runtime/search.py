"""Full-text search over the caller's sessions: message text, tool names, and
session and thread titles, ranked, with highlighted snippets, cursor-paginated.

The databases keep their indexes in step themselves (triggers and generated
columns: models/migrations/0010_search.py), so every write path (chat, imports,
edits, the janitor's deletions) is covered without a line here. GraphQL `search`
and REST `GET /api/search` both call `SearchService.search`; the caller sees only
its app's live sessions (the same rule as everywhere: runtime/access.py, applied
in SQL for the page and again to each hit's session).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from runtime import cursors, validation
from runtime.apps import AppRegistry, Caller
from runtime.conversations import Conversations
from runtime.errors import InvalidInput
from runtime.events.envelope import utc_now
from runtime.records import MessageRecord, Role, SessionRecord
from runtime.search_terms import parse_terms
from runtime.store.protocol import SessionStore
from runtime.store.search_protocol import (
    MARK_END,
    MARK_START,
    HitKind,
    SearchKey,
    SearchQuery,
    SearchRow,
)

SEARCH_PAGE_MAX = 50


@dataclass(frozen=True, slots=True)
class SnippetPart:
    text: str
    highlighted: bool


@dataclass(frozen=True, slots=True)
class SearchHit:
    kind: HitKind
    session: SessionRecord
    thread_id: UUID | None
    message: MessageRecord | None
    parts: tuple[SnippetPart, ...]
    rank: float
    cursor: str

    @property
    def snippet(self) -> str:
        return "".join(part.text for part in self.parts)


@dataclass(frozen=True, slots=True)
class SearchResults:
    hits: list[SearchHit]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return self.hits[-1].cursor if self.hits else None


@dataclass(frozen=True, slots=True)
class SearchFilters:
    public_key: str | None = None
    thread_id: UUID | None = None
    role: Role | None = None
    archived: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Also the versions of messages off the active path (edits, regenerated answers).
    all_versions: bool = False


class SearchService:
    def __init__(
        self, store: SessionStore, conversations: Conversations, apps: AppRegistry
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._apps = apps

    async def search(
        self,
        caller: Caller,
        text: str,
        filters: SearchFilters = SearchFilters(),
        *,
        first: int = 20,
        after: SearchKey | None = None,
    ) -> SearchResults:
        """Every argument is checked before the database is asked."""
        terms = parse_terms("query", text)
        if not 1 <= first <= SEARCH_PAGE_MAX:
            raise InvalidInput("first", f"must be between 1 and {SEARCH_PAGE_MAX}, got {first}")
        key = filters.public_key
        if key is not None:
            key = validation.public_key_arg("publicKey", key)
        since, until = _utc(filters.since), _utc(filters.until)
        if since is not None and until is not None and since >= until:
            raise InvalidInput("until", "must be later than since")
        page = await self._store.search(
            SearchQuery(
                app=caller.app,
                terms=terms,
                language=self._apps.get(caller.app).search_language,
                now=utc_now(),
                limit=first,
                after=after,
                public_key=key,
                thread_id=filters.thread_id,
                role=filters.role,
                archived=filters.archived,
                since=since,
                until=until,
                all_versions=filters.all_versions,
            )
        )
        sessions: dict[UUID, SessionRecord | None] = {}
        hits = []
        for row in page.items:
            if row.session_id not in sessions:
                sessions[row.session_id] = await self._conversations.find_session(
                    caller, row.session_id
                )
            session = sessions[row.session_id]
            if session is not None:  # expired or deleted since the query: left out
                hits.append(_hit(row, session))
        return SearchResults(hits=hits, has_next=page.has_next)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC, as every stored time is."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hit(row: SearchRow, session: SessionRecord) -> SearchHit:
    return SearchHit(
        kind=row.key.kind,
        session=session,
        thread_id=row.thread_id,
        message=row.message,
        parts=snippet_parts(row.snippet),
        rank=row.key.rank,
        cursor=search_cursor(row.key),
    )


def snippet_parts(marked: str) -> tuple[SnippetPart, ...]:
    """The database's snippet, its highlights marked by MARK_START/MARK_END, as
    plain and highlighted runs (a UI renders them without parsing any markup)."""
    parts: list[SnippetPart] = []
    rest = marked
    while rest:
        before, start, after = rest.partition(MARK_START)
        if before:
            parts.append(SnippetPart(before.replace(MARK_END, ""), False))
        if not start:
            break
        inside, _, rest = after.partition(MARK_END)
        inside = inside.replace(MARK_START, "")
        if inside:
            parts.append(SnippetPart(inside, True))
    return tuple(_merged(parts))


def _merged(parts: list[SnippetPart]) -> list[SnippetPart]:
    """Adjacent runs of the same kind as one (two highlighted words in a row are
    one highlight, as a reader sees them)."""
    merged: list[SnippetPart] = []
    for part in parts:
        if merged and merged[-1].highlighted == part.highlighted:
            merged[-1] = SnippetPart(merged[-1].text + part.text, part.highlighted)
        else:
            merged.append(part)
    return merged


def search_cursor(key: SearchKey) -> str:
    # repr: the shortest text that reads back as the same float, so the next page
    # starts exactly after this hit.
    return cursors.encode("h", f"{key.rank!r}|{key.kind.value}|{key.id}")


def parse_search_cursor(field: str, cursor: str) -> SearchKey:
    rank, _, rest = cursors.decode(field, cursor, "h").partition("|")
    kind, _, id = rest.partition("|")
    try:
        return SearchKey(float(rank), HitKind(kind), UUID(id))
    except ValueError:
        raise InvalidInput(field, "is not a cursor this API issued") from None
