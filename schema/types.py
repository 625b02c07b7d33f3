"""GraphQL object types: sessions, threads, messages and their connections."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from runtime.memo import MESSAGE_MEMO_CAPACITY, Memo, memoizable
from runtime.records import MessageRecord, Page, SessionRecord, ThreadRecord
from runtime.turns.streams import StreamingMessage
from runtime.validation import page_size_arg
from schema.cursors import message_cursor, session_cursor
from schema.events import SystemEvent
from schema.feedback_types import Feedback
from schema.memory_types import ContextSummary, TurnUsage
from schema.pagination import message_window

if TYPE_CHECKING:
    from schema.context import Context


@strawberry.enum
class TitleSource(Enum):
    DEFAULT = "default"
    GENERATED = "generated"
    USER = "user"


@strawberry.enum
class Role(Enum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A message's versions: `ids[index]` is this one.")
class MessageSiblings:
    count: int
    index: int
    ids: list[strawberry.ID]


@strawberry.type
class Message:
    id: strawberry.ID
    session_id: strawberry.ID
    thread_id: strawberry.ID
    seq: int
    role: Role
    content: str
    tool_calls: JSON | None
    tool_results: JSON | None
    is_interrupted: bool
    created_at: datetime
    cursor: str
    is_streaming: bool = strawberry.field(
        default=False, description="True for the assistant message still being written."
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The message this one follows in its thread's tree (null: the first).",
    )

    @classmethod
    def from_streaming(cls, streaming: StreamingMessage) -> Message:
        return cls(
            id=strawberry.ID(str(streaming.id)),
            session_id=strawberry.ID(str(streaming.session_id)),
            thread_id=strawberry.ID(str(streaming.thread_id)),
            seq=0,
            role=Role.ASSISTANT,
            content=streaming.text,
            tool_calls=None,
            tool_results=None,
            is_interrupted=False,
            created_at=streaming.started_at,
            cursor="",
            is_streaming=True,
        )

    @classmethod
    def from_record(cls, record: MessageRecord) -> Message:
        """Shared by every query that shows the message: never mutate it."""
        if not memoizable(record):
            return cls._convert(record)
        return _messages.get(record.id, lambda: cls._convert(record))

    @classmethod
    def _convert(cls, record: MessageRecord) -> Message:
        return cls(
            id=strawberry.ID(str(record.id)),
            session_id=strawberry.ID(str(record.session_id)),
            thread_id=strawberry.ID(str(record.thread_id)),
            seq=record.seq,
            role=Role(record.role.value),
            content=record.content,
            tool_calls=JSON(record.tool_calls),
            tool_results=JSON(record.tool_results),
            is_interrupted=record.is_interrupted,
            created_at=record.created_at,
            cursor=message_cursor(record.seq),
            parent_id=None if record.parent_id is None else strawberry.ID(str(record.parent_id)),
        )


# Stored messages never change: each is converted once, however often it is read.
_messages: Memo[UUID, Message] = Memo(MESSAGE_MEMO_CAPACITY)


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    # A plain field, not a resolver: a list graphql-core reads without a call.
    nodes: list[Message]

    @classmethod
    def from_page(cls, page: Page[MessageRecord]) -> MessageConnection:
        nodes = [Message.from_record(m) for m in page.items]
        edges = [MessageEdge(cursor=node.cursor, node=node) for node in nodes]
        return cls(edges=edges, page_info=_page_info(page, edges), nodes=nodes)


FirstArg = Annotated[
    int | None, strawberry.argument(description="Page size from the start, 1-200.")
]
LastArg = Annotated[int | None, strawberry.argument(description="Page size from the end, 1-200.")]


async def _thread_messages(
    info: strawberry.Info[Context, None],
    thread_id: strawberry.ID,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> MessageConnection:
    window = message_window(first, after, last, before)
    context = info.context
    page = await context.conversations.list_messages(context.caller, UUID(thread_id), window)
    return MessageConnection.from_page(page)


@strawberry.type
class Thread:
    id: strawberry.ID
    session_id: strawberry.ID
    title: str | None
    is_primary: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: ThreadRecord) -> Thread:
        return cls(
            id=strawberry.ID(str(record.id)),
            session_id=strawberry.ID(str(record.session_id)),
            title=record.title,
            is_primary=record.is_primary,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )

    @strawberry.field(description="Messages, oldest first; page with first/after or last/before.")
    async def messages(
        self,
        info: strawberry.Info[Context, None],
        first: FirstArg = None,
        after: str | None = None,
        last: LastArg = None,
        before: str | None = None,
    ) -> MessageConnection:
        return await _thread_messages(info, self.id, first, after, last, before)


@strawberry.type
class Session:
    id: strawberry.ID
    app: str
    title: str = strawberry.field(description='The display title; "New chat" until set.')
    title_source: TitleSource
    public_key: str | None
    user_state: JSON | None
    state: JSON
    metadata: JSON
    model: str | None
    is_archived: bool
    is_pinned: bool = strawberry.field(
        description="Never expires by TTL; listed before unpinned sessions."
    )
    is_processing: bool
    version: int
    created_at: datetime
    updated_at: datetime
    last_active_at: datetime
    expires_at: datetime | None
    legacy_id: str | None = strawberry.field(
        description="The text id a legacy REST client named the session by, when it is "
        "not a UUID; `id` is then a stable UUID derived from it."
    )
    # The record this object shows: its fields are checked against the caller with it
    # (Conversations.authorized), never taken as checked by whoever built the object.
    record: strawberry.Private[SessionRecord]

    @classmethod
    def from_record(cls, record: SessionRecord) -> Session:
        return cls(
            id=strawberry.ID(str(record.id)),
            app=record.app,
            title=record.display_title,
            title_source=TitleSource(record.title_source.value),
            public_key=record.public_key,
            user_state=JSON(record.user_state),
            state=JSON(record.state),
            metadata=JSON(record.metadata),
            model=record.model,
            is_archived=record.is_archived,
            is_pinned=record.is_pinned,
            is_processing=record.is_processing,
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            last_active_at=record.last_active_at,
            expires_at=record.expires_at,
            legacy_id=record.legacy_id,
            record=record,
        )

    @strawberry.field(description="All threads, the primary one (id = session id) first.")
    async def threads(self, info: strawberry.Info[Context, None]) -> list[Thread]:
        context = info.context
        records = await context.conversations.list_threads(context.caller, UUID(self.id))
        return [Thread.from_record(r) for r in sorted(records, key=lambda r: not r.is_primary)]

    @strawberry.field(
        description="The assistant message being streamed right now (this replica), if any."
    )
    def streaming_message(self, info: strawberry.Info[Context, None]) -> Message | None:
        context = info.context
        context.conversations.authorized(context.caller, self.record)
        streaming = context.runtime.turns.streaming(self.record.id)
        return None if streaming is None else Message.from_streaming(streaming)

    @strawberry.field(
        description="The running summary of the primary thread's earlier messages, which "
        "the model sees in place of those that no longer fit its context; null until needed."
    )
    async def context_summary(self, info: strawberry.Info[Context, None]) -> ContextSummary | None:
        context = info.context
        found = await context.conversations.context_summary(context.caller, self.record)
        return None if found is None else ContextSummary.from_record(found)

    @strawberry.field(description="The newest turns, oldest first, with what each sent the model.")
    async def turns(self, info: strawberry.Info[Context, None], last: int = 20) -> list[TurnUsage]:
        context = info.context
        found = await context.conversations.turn_usage(context.caller, self.record, last)
        return [TurnUsage.from_record(usage) for usage in found]

    @strawberry.field(description="Ratings of this session's assistant messages, oldest first.")
    async def feedback(
        self, info: strawberry.Info[Context, None], first: int = 100
    ) -> list[Feedback]:
        context = info.context
        found = await context.runtime.feedback.of_session(context.caller, self.record, first)
        return [Feedback.from_record(record) for record in found]

    @strawberry.field(description="Notices, errors and inline calls, oldest first.")
    async def system_events(
        self, info: strawberry.Info[Context, None], after: int = 0, first: int = 100
    ) -> list[SystemEvent]:
        context = info.context
        records = await context.conversations.list_system_events(
            context.caller, UUID(self.id), after, page_size_arg("first", first)
        )
        return [SystemEvent.from_record(r) for r in records]

    @strawberry.field(description="Messages of the primary thread.")
    async def messages(
        self,
        info: strawberry.Info[Context, None],
        first: FirstArg = None,
        after: str | None = None,
        last: LastArg = None,
        before: str | None = None,
    ) -> MessageConnection:
        # Checked against the record this object holds, and the primary thread's id
        # is the session's own: no second lookup of either.
        context = info.context
        window = message_window(first, after, last, before)
        page = await context.conversations.primary_messages(context.caller, self.record, window)
        return MessageConnection.from_page(page)


@strawberry.type
class SessionEdge:
    cursor: str
    node: Session


@strawberry.type
class SessionConnection:
    edges: list[SessionEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[Session]:
        return [edge.node for edge in self.edges]

    @classmethod
    def from_page(cls, page: Page[SessionRecord]) -> SessionConnection:
        edges = [
            SessionEdge(cursor=session_cursor(s), node=Session.from_record(s)) for s in page.items
        ]
        return cls(edges=edges, page_info=_page_info(page, edges))


@strawberry.type
class DeletePayload:
    id: strawberry.ID
    deleted: bool = True


@strawberry.type
class AppInfo:
    name: str
    display_name: str
    models: list[str]


def _page_info(page: Page[Any], edges: list[MessageEdge] | list[SessionEdge]) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
