"""Subscription root: a session's live events over WebSockets."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from runtime.errors import ConfabError
from runtime.events import RESYNC_REQUIRED, Event
from runtime.events.envelope import SYSTEM_NOTICE, TITLE_CHANGED, TOOL_COMPLETE, TOOL_UPDATE
from runtime.validation import uuid_arg
from schema.context import Context
from schema.events import (
    SessionEvent,
    SystemNoticeEvent,
    TitleChangedEvent,
    ToolEvent,
    parse_event_cursor,
)

Info = strawberry.Info[Context, None]


class CursorExpired(ConfabError):
    code = "CURSOR_EXPIRED"


async def _watch(
    info: Info, session_id: str, types: frozenset[str] | None, after: str | None = None
) -> AsyncIterator[Event]:
    context = info.context
    async with context.conversations.watching(
        context.caller,
        uuid_arg("sessionId", session_id),
        after=None if after is None else parse_event_cursor("after", after),
        types=types,
    ) as events:
        async for event in events:
            yield event


async def _typed(info: Info, session_id: str, event_type: str) -> AsyncIterator[Event]:
    """One event type; a gap it cannot fill ends it with CURSOR_EXPIRED (resubscribe)."""
    async for event in _watch(info, session_id, frozenset({event_type})):
        if event.type == RESYNC_REQUIRED:
            raise CursorExpired(event.data["message"])
        yield event


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Every event of a session (or the listed types), resumable from a "
        "cursor: `after` replays what followed it, then continues live."
    )
    async def session_events(
        self,
        info: Info,
        session_id: strawberry.ID,
        types: list[str] | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[SessionEvent, None]:
        wanted = None if not types else frozenset(types)
        async for event in _watch(info, session_id, wanted, after):
            yield SessionEvent.from_event(event)

    @strawberry.subscription
    async def title_changed(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[TitleChangedEvent, None]:
        async for event in _typed(info, session_id, TITLE_CHANGED):
            yield TitleChangedEvent.from_event(event)

    @strawberry.subscription
    async def tool_update(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[ToolEvent, None]:
        async for event in _typed(info, session_id, TOOL_UPDATE):
            yield ToolEvent.from_event(event)

    @strawberry.subscription
    async def tool_complete(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[ToolEvent, None]:
        async for event in _typed(info, session_id, TOOL_COMPLETE):
            yield ToolEvent.from_event(event)

    @strawberry.subscription
    async def system_notice(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[SystemNoticeEvent, None]:
        async for event in _typed(info, session_id, SYSTEM_NOTICE):
            yield SystemNoticeEvent.from_event(event)
