"""Search results as GraphQL shows them (runtime/search.py)."""

from __future__ import annotations

from enum import Enum

import strawberry

from runtime.search import SearchHit as HitRecord
from runtime.search import SearchResults as ResultsRecord
from schema.types import Message, PageInfo, Session


@strawberry.enum(description="What a search hit matched.")
class SearchHitKind(Enum):
    MESSAGE = "message"
    SESSION = "session"
    THREAD = "thread"


@strawberry.type(description="A run of a snippet: matched words are `highlighted`.")
class SnippetPart:
    text: str
    highlighted: bool


@strawberry.type(description="One match: a message (its text or tool names) or a title.")
class SearchHit:
    kind: SearchHitKind = strawberry.field(
        description="MESSAGE, or the title of the SESSION or of a THREAD."
    )
    session: Session
    thread_id: strawberry.ID | None = strawberry.field(
        description="The message's thread, or the thread whose title matched."
    )
    message: Message | None = strawberry.field(
        description="The message that matched; its `cursor` pages the thread's messages "
        "from there (`messages(threadId:, after:)` or `before:`)."
    )
    snippet: str = strawberry.field(description="The matched text around the match, plain.")
    parts: list[SnippetPart] = strawberry.field(
        description="The snippet as plain and highlighted runs, in order."
    )
    rank: float = strawberry.field(
        description="Higher is better; comparable within one search only."
    )
    cursor: str

    @classmethod
    def from_record(cls, hit: HitRecord) -> SearchHit:
        return cls(
            kind=SearchHitKind(hit.kind.value),
            session=Session.from_record(hit.session),
            thread_id=None if hit.thread_id is None else strawberry.ID(str(hit.thread_id)),
            message=None if hit.message is None else Message.from_record(hit.message),
            snippet=hit.snippet,
            parts=[SnippetPart(text=p.text, highlighted=p.highlighted) for p in hit.parts],
            rank=hit.rank,
            cursor=hit.cursor,
        )


@strawberry.type(description="A page of search hits, best first.")
class SearchResults:
    hits: list[SearchHit]
    page_info: PageInfo

    @classmethod
    def from_record(cls, results: ResultsRecord, after: str | None) -> SearchResults:
        hits = [SearchHit.from_record(hit) for hit in results.hits]
        return cls(
            hits=hits,
            page_info=PageInfo(
                has_next_page=results.has_next,
                has_previous_page=after is not None,
                start_cursor=hits[0].cursor if hits else None,
                end_cursor=results.end_cursor,
            ),
        )
