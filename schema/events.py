"""GraphQL types of live events. Every event carries its `cursor` (the event id as a
string: ids exceed GraphQL's 32-bit Int), which `sessionEvents(after:)` resumes from.

Each type is a pure view of the bus event it keeps in `event`: a result is rendered
once per event and shared by every subscriber (schema/live.py), so no field here may
depend on the caller.

`SessionEvent.data` is the envelope's JSON, untyped; `SessionEvent.payload` is the same
content as a member of the `SessionEventPayload` union (schema/event_payloads.py)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from runtime.errors import InvalidInput
from runtime.events import Event
from runtime.records import SystemEventRecord

if TYPE_CHECKING:
    from schema.event_payloads import SessionEventPayload


@strawberry.type(description="Any event of a session, in the bus's envelope.")
class SessionEvent:
    cursor: str
    type: str = strawberry.field(
        description="title_changed, tool_update, tool_complete, system_notice, message_added, "
        "message_delta, processing_changed, session_updated, session_deleted, a custom type, "
        "or resync_required (the cursor could not be resumed: refetch state)."
    )
    session_id: strawberry.ID
    app: str
    ts: datetime
    data: JSON = strawberry.field(description="The event's data, as JSON (see `payload`).")
    event: strawberry.Private[Event]

    # Lazy: the members hold schema/types.py's Message, and that module imports this one.
    @strawberry.field(
        description="The event's data, typed: one member per kind of event (a custom type, "
        "or data that does not fit its type's member, is a CustomEventPayload)."
    )
    def payload(
        self,
    ) -> Annotated[SessionEventPayload, strawberry.lazy("schema.event_payloads")]:
        from schema.event_payloads import payload_of

        return payload_of(self.event)

    @classmethod
    def from_event(cls, event: Event) -> SessionEvent:
        return cls(
            cursor=str(event.id),
            type=event.type,
            session_id=strawberry.ID(str(event.session_id)),
            app=event.app,
            ts=event.ts,
            data=JSON(event.data),
            event=event,
        )


@strawberry.type
class TitleChangedEvent:
    cursor: str
    session_id: strawberry.ID
    new_title: str
    source: str
    ts: datetime
    event: strawberry.Private[Event]

    @classmethod
    def from_event(cls, event: Event) -> TitleChangedEvent:
        return cls(
            cursor=str(event.id),
            session_id=strawberry.ID(str(event.session_id)),
            new_title=event.data["new_title"],
            source=str(event.data.get("source", "user")),
            ts=event.ts,
            event=event,
        )


@strawberry.type(description="A tool run's progress (toolUpdate) or outcome (toolComplete).")
class ToolEvent:
    cursor: str
    session_id: strawberry.ID
    id: str = strawberry.field(description="This tool run.")
    call_id: str | None = strawberry.field(description="The model's id for the call.")
    tool_name: str
    result: JSON
    ts: datetime
    event: strawberry.Private[Event]

    @classmethod
    def from_event(cls, event: Event) -> ToolEvent:
        return cls(
            cursor=str(event.id),
            session_id=strawberry.ID(str(event.session_id)),
            id=str(event.data.get("id", "")),
            call_id=event.data.get("call_id"),
            tool_name=str(event.data.get("tool_name", "")),
            result=JSON(event.data.get("result")),
            ts=event.ts,
            event=event,
        )


@strawberry.type
class SystemNoticeEvent:
    cursor: str
    session_id: strawberry.ID
    message: str
    ts: datetime
    event: strawberry.Private[Event]

    @classmethod
    def from_event(cls, event: Event) -> SystemNoticeEvent:
        return cls(
            cursor=str(event.id),
            session_id=strawberry.ID(str(event.session_id)),
            message=str(event.data.get("message", "")),
            ts=event.ts,
            event=event,
        )


@strawberry.type(description="A stored notice, error or inline call of a session.")
class SystemEvent:
    id: strawberry.ID
    kind: str = strawberry.field(description="notice, error or inline_call")
    payload: JSON
    created_at: datetime

    @classmethod
    def from_record(cls, record: SystemEventRecord) -> SystemEvent:
        return cls(
            id=strawberry.ID(str(record.id)),
            kind=record.kind,
            payload=JSON(record.payload),
            created_at=record.created_at,
        )


def parse_event_cursor(field: str, cursor: str) -> int:
    text = cursor.strip()
    if not text.isdigit():
        raise InvalidInput(field, "is not an event cursor (the `cursor` of an earlier event)")
    return int(text)
