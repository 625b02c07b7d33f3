"""Subscription root: a session's live events over WebSockets."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TypeVar

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
from schema.live import LIVE_SINK

Info = strawberry.Info[Context, None]
View = TypeVar("View")


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


async def _typed(
    info: Info, session_id: str, event_type: str, fits: Callable[[Event], bool] | None = None
) -> AsyncIterator[Event]:
    """One event type; a gap it cannot fill ends it with CURSOR_EXPIRED (resubscribe).
    With `fits`, an event of the type that a client posted without the data its view
    needs (`POST /api/system` takes the documented types) is left out, not an error."""
    async for event in _watch(info, session_id, frozenset({event_type})):
        if event.type == RESYNC_REQUIRED:
            raise CursorExpired(event.data["message"])
        if fits is None or fits(event):
            yield event


def _has_title(event: Event) -> bool:
    return isinstance(event.data.get("new_title"), str)


async def _views(
    info: Info, events: AsyncIterator[Event], view: Callable[[Event], View]
) -> AsyncIterator[View]:
    """Each event's view: written straight to the socket when the transport offers a
    sink (schema/live.py), otherwise yielded for Strawberry to execute and send."""
    sink = LIVE_SINK.get()
    async for event in events:
        if sink is None or not await sink.deliver(info, view, event):
            yield view(event)


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
        events = _watch(info, session_id, wanted, after)
        async for view in _views(info, events, SessionEvent.from_event):
            yield view

    @strawberry.subscription
    async def title_changed(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[TitleChangedEvent, None]:
        async for view in _views(
            info, _typed(info, session_id, TITLE_CHANGED, _has_title), TitleChangedEvent.from_event
        ):
            yield view

    @strawberry.subscription
    async def tool_update(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[ToolEvent, None]:
        async for view in _views(info, _typed(info, session_id, TOOL_UPDATE), ToolEvent.from_event):
            yield view

    @strawberry.subscription
    async def tool_complete(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[ToolEvent, None]:
        async for view in _views(
            info, _typed(info, session_id, TOOL_COMPLETE), ToolEvent.from_event
        ):
            yield view

    @strawberry.subscription
    async def system_notice(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[SystemNoticeEvent, None]:
        async for view in _views(
            info, _typed(info, session_id, SYSTEM_NOTICE), SystemNoticeEvent.from_event
        ):
            yield view
