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


async def _live(
    info: Info,
    session_id: str,
    view: Callable[[Event], View],
    *,
    types: frozenset[str] | None = None,
    after: str | None = None,
    typed: str | None = None,
    fits: Callable[[Event], bool] | None = None,
) -> AsyncIterator[View]:
    """The session's events for this caller (from `after`, then live), each as its
    view: written straight to the socket when the transport offers a sink
    (schema/live.py), otherwise yielded for Strawberry to execute and send.

    With `typed`, one event type whose gap cannot be filled ends the subscription
    with CURSOR_EXPIRED (resubscribe); with `fits`, an event of the type that a
    client posted without the data its view needs (`POST /api/system` takes the
    documented types) is left out, not an error. One generator for all of it: every
    event resumes each subscriber's whole chain of generators, 1,000 times per event
    with 1,000 subscribers."""
    context = info.context
    sink = LIVE_SINK.get()
    async with context.conversations.watching(
        context.caller,
        uuid_arg("sessionId", session_id),
        after=None if after is None else parse_event_cursor("after", after),
        types=frozenset({typed}) if typed is not None else types,
    ) as events:
        async for event in events:
            if typed is not None:
                if event.type == RESYNC_REQUIRED:
                    raise CursorExpired(event.data["message"])
                if fits is not None and not fits(event):
                    continue
            if sink is None or not await sink.deliver(info, view, event):
                yield view(event)


def _has_title(event: Event) -> bool:
    return isinstance(event.data.get("new_title"), str)


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
        async for view in _live(
            info, session_id, SessionEvent.from_event, types=wanted, after=after
        ):
            yield view

    @strawberry.subscription
    async def title_changed(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[TitleChangedEvent, None]:
        async for view in _live(
            info, session_id, TitleChangedEvent.from_event, typed=TITLE_CHANGED, fits=_has_title
        ):
            yield view

    @strawberry.subscription
    async def tool_update(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[ToolEvent, None]:
        async for view in _live(info, session_id, ToolEvent.from_event, typed=TOOL_UPDATE):
            yield view

    @strawberry.subscription
    async def tool_complete(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[ToolEvent, None]:
        async for view in _live(info, session_id, ToolEvent.from_event, typed=TOOL_COMPLETE):
            yield view

    @strawberry.subscription
    async def system_notice(
        self, info: Info, session_id: strawberry.ID
    ) -> AsyncGenerator[SystemNoticeEvent, None]:
        async for view in _live(
            info, session_id, SystemNoticeEvent.from_event, typed=SYSTEM_NOTICE
        ):
            yield view
