"""`SessionEvent.payload`: the event's `data` as one typed object per kind of event.

`data` stays what it always was (the envelope's JSON, untyped); `payload` is the same
content as a member of the `SessionEventPayload` union, so that a client selects it
with inline fragments and a code generator gives it real types:

- `message_added`: `MessageAddedPayload {message: Message!}`
- `message_delta`: `MessageDeltaPayload {messageId, threadId, delta}`
- `title_changed`: `TitleChangedPayload {newTitle, source: TitleSource!}`
- `tool_update`: `ToolUpdatePayload {id, callId, toolName, status, arguments, progress}`
- `tool_complete`: `ToolCompletePayload {id, callId, toolName, result, error}`
- `system_notice`: `SystemNoticePayload {text, kind, eventId}`
- `processing_changed`: `ProcessingChangedPayload {isProcessing}`
- `session_updated`: `SessionUpdatedPayload {changes: JSON!}`
- `session_deleted`: `SessionDeletedPayload {sessionId}`
- `feedback_changed`: `FeedbackChangedPayload {feedback: Feedback!}`
- `message_edited`: `MessageEditedPayload {message: Message!, replacesId}`
- `branch_switched`: `BranchSwitchedPayload {threadId, messageId, leafId}`
- `resync_required`: `ResyncRequiredPayload {code, text, after}`
- any other type: `CustomEventPayload {type, data: JSON!}`

A member is chosen only when `data` has its shape. Clients may post the documented
types themselves (`POST /api/system` with `{"type": "title_changed", ...}`): one whose
data does not fit (no `new_title`, say) is a `CustomEventPayload` with its type, never
an error, so every non-null field of a member holds.

No two members share a field name with a different type: GraphQL refuses such a
pair in one selection even across union members (its "same response shape" rule),
which would stop a client from selecting every member at once. That is why the text
of a notice or a resync is `text` (`data.message`), while `message` is the `Message`
of `message_added`.

Every member is a pure view of the event (nothing here reads the caller or the
context), built once per event and kept in `event.derived`: an event's rendering
is shared by every subscriber of the same operation (schema/live.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from runtime.events import RESYNC_REQUIRED, Event
from runtime.events.envelope import (
    BRANCH_SWITCHED,
    FEEDBACK_CHANGED,
    MESSAGE_ADDED,
    MESSAGE_DELTA,
    MESSAGE_EDITED,
    PROCESSING_CHANGED,
    SESSION_DELETED,
    SESSION_UPDATED,
    SYSTEM_NOTICE,
    TITLE_CHANGED,
    TOOL_COMPLETE,
    TOOL_UPDATE,
)
from runtime.records import FeedbackRecord, MessageRecord, Role
from schema.feedback_types import Feedback
from schema.types import Message, TitleSource


@strawberry.type(description="`message_added`: a message was stored (any role, any thread).")
class MessageAddedPayload:
    message: Message


@strawberry.type(description="`message_delta`: more text of the assistant message being written.")
class MessageDeltaPayload:
    message_id: strawberry.ID = strawberry.field(
        description="The message being written (its id once stored)."
    )
    thread_id: strawberry.ID
    delta: str = strawberry.field(description="The text that follows what came before.")


@strawberry.type(description="`title_changed`: the session has a new title.")
class TitleChangedPayload:
    new_title: str
    source: TitleSource = strawberry.field(
        description="USER (renameSession) or GENERATED (after the first answer)."
    )


@strawberry.type(
    description="`tool_update`: a tool run started (`arguments`) or reported progress."
)
class ToolUpdatePayload:
    id: str = strawberry.field(description="This tool run.")
    call_id: str | None = strawberry.field(description="The model's id for the call.")
    tool_name: str
    status: str = strawberry.field(description="`running` while the tool runs.")
    arguments: JSON | None = strawberry.field(
        description="The call's arguments: on the update that starts the run."
    )
    progress: JSON | None = strawberry.field(description="What the tool reported, if it did.")


@strawberry.type(description="`tool_complete`: a tool run ended, with its result or its error.")
class ToolCompletePayload:
    id: str = strawberry.field(description="This tool run.")
    call_id: str | None = strawberry.field(description="The model's id for the call.")
    tool_name: str
    result: JSON | None = strawberry.field(description="The tool's result; null when it failed.")
    error: str | None = strawberry.field(description="Why it failed; null when it succeeded.")


@strawberry.type(description="`system_notice`: a notice or an error posted to the session.")
class SystemNoticePayload:
    text: str = strawberry.field(description="The notice (`data.message`).")
    kind: str = strawberry.field(
        description="notice (postSystemNotice, an interruption) or error (a failed turn)."
    )
    event_id: strawberry.ID | None = strawberry.field(
        description="The stored SystemEvent's id (Session.systemEvents), when it was stored."
    )


@strawberry.type(description="`processing_changed`: a turn started or the last one ended.")
class ProcessingChangedPayload:
    is_processing: bool


@strawberry.type(
    description="`session_updated`: fields of the session changed (archive, wallet, user "
    "state, metadata)."
)
class SessionUpdatedPayload:
    changes: JSON = strawberry.field(description="{field: new value}, as in `data.changes`.")


@strawberry.type(description="`feedback_changed`: a client rated a message (or changed it).")
class FeedbackChangedPayload:
    feedback: Feedback


@strawberry.type(
    description="`message_edited`: a new version of a message, now on the active path (the "
    "assistant answers it next)."
)
class MessageEditedPayload:
    message: Message
    replaces_id: strawberry.ID = strawberry.field(description="The version it was made from.")


@strawberry.type(
    description="`branch_switched`: the thread's active path now runs through `messageId` and "
    "ends at `leafId`: refetch the thread's messages."
)
class BranchSwitchedPayload:
    thread_id: strawberry.ID
    message_id: strawberry.ID
    leaf_id: strawberry.ID


@strawberry.type(description="`session_deleted`: the session is gone, with its threads.")
class SessionDeletedPayload:
    session_id: strawberry.ID


@strawberry.type(
    description="`resync_required`: the cursor cannot be resumed; refetch the session, then "
    "continue with the events that follow (this event's cursor is where they continue)."
)
class ResyncRequiredPayload:
    code: str = strawberry.field(description="CURSOR_EXPIRED")
    text: str = strawberry.field(description="What to do (`data.message`).")
    after: str = strawberry.field(description="The cursor that could not be resumed.")


@strawberry.type(
    description="Any other event: a custom type posted to the session (`POST /api/system` "
    "with a JSON object that has a `type`), or a documented type whose data does not fit "
    "its member."
)
class CustomEventPayload:
    type: str
    data: JSON


SessionEventPayload = Annotated[
    MessageAddedPayload
    | MessageDeltaPayload
    | TitleChangedPayload
    | ToolUpdatePayload
    | ToolCompletePayload
    | SystemNoticePayload
    | ProcessingChangedPayload
    | SessionUpdatedPayload
    | SessionDeletedPayload
    | FeedbackChangedPayload
    | MessageEditedPayload
    | BranchSwitchedPayload
    | ResyncRequiredPayload
    | CustomEventPayload,
    strawberry.union(
        "SessionEventPayload",
        description="The event's `data`, typed: one member per kind of event.",
    ),
]

_PAYLOAD = "graphql-payload"  # this module's key in `Event.derived`


def payload_of(event: Event) -> SessionEventPayload:
    """The event's member, built once per event whoever asks (it depends on nothing else)."""
    derived = event.derived
    found: SessionEventPayload | None = derived.get(_PAYLOAD)
    if found is None:
        found = derived[_PAYLOAD] = _build(event)
    return found


class _Mismatch(Exception):
    """The data does not have the shape of its type's member."""


def _build(event: Event) -> SessionEventPayload:
    build = _BUILDERS.get(event.type)
    if build is not None:
        try:
            return build(event)
        except (_Mismatch, KeyError, TypeError, ValueError, AttributeError):
            pass
    return CustomEventPayload(type=event.type, data=JSON(event.data))


def _text(data: dict[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise _Mismatch(key)
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _Mismatch(key)
    return value


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data[key]
    if not isinstance(value, dict):
        raise _Mismatch(key)
    return value


def _message_added(event: Event) -> MessageAddedPayload:
    # The stored message itself (the event carries `MessageRecord.as_json`): the same
    # object a query shows, memoized by id like every stored message.
    return MessageAddedPayload(message=Message.from_record(_message(event)))


def _message_edited(event: Event) -> MessageEditedPayload:
    replaces = strawberry.ID(str(UUID(_text(event.data, "replaces_id"))))
    return MessageEditedPayload(message=Message.from_record(_message(event)), replaces_id=replaces)


def _branch_switched(event: Event) -> BranchSwitchedPayload:
    data = event.data
    return BranchSwitchedPayload(
        thread_id=strawberry.ID(str(UUID(_text(data, "thread_id")))),
        message_id=strawberry.ID(str(UUID(_text(data, "message_id")))),
        leaf_id=strawberry.ID(str(UUID(_text(data, "leaf_id")))),
    )


def _message(event: Event) -> MessageRecord:
    """`data.message` (`MessageRecord.as_json`) as the record."""
    raw = _object(event.data, "message")
    tool_calls, tool_results = raw.get("tool_calls"), raw.get("tool_results")
    if not isinstance(tool_calls, list | None) or not isinstance(tool_results, list | None):
        raise _Mismatch("message")
    is_interrupted = raw["is_interrupted"]
    seq = raw["seq"]
    if not isinstance(is_interrupted, bool) or not isinstance(seq, int):
        raise _Mismatch("message")
    created_at = datetime.fromisoformat(_text(raw, "created_at"))
    if created_at.tzinfo is None:
        raise _Mismatch("message")
    parent = raw.get("parent_id")
    if not isinstance(parent, str | None):
        raise _Mismatch("message")
    return MessageRecord(
        id=UUID(_text(raw, "id")),
        session_id=event.session_id,
        thread_id=UUID(_text(raw, "thread_id")),
        seq=seq,
        role=Role(_text(raw, "role")),
        content=_text(raw, "content"),
        tool_calls=tool_calls,
        tool_results=tool_results,
        is_interrupted=is_interrupted,
        created_at=created_at,
        parent_id=None if parent is None else UUID(parent),
    )


def _message_delta(event: Event) -> MessageDeltaPayload:
    data = event.data
    return MessageDeltaPayload(
        message_id=strawberry.ID(_text(data, "message_id")),
        thread_id=strawberry.ID(_text(data, "thread_id")),
        delta=_text(data, "delta"),
    )


def _title_changed(event: Event) -> TitleChangedPayload:
    data = event.data
    return TitleChangedPayload(
        new_title=_text(data, "new_title"), source=TitleSource(_text(data, "source"))
    )


def _tool_update(event: Event) -> ToolUpdatePayload:
    data = event.data
    result = _object(data, "result")
    return ToolUpdatePayload(
        id=_text(data, "id"),
        call_id=_optional_text(data, "call_id"),
        tool_name=_text(data, "tool_name"),
        status=_text(result, "status"),
        arguments=JSON(result.get("arguments")),
        progress=JSON(result.get("progress")),
    )


def _tool_complete(event: Event) -> ToolCompletePayload:
    data = event.data
    result = data["result"]
    # The runtime sends a failure as {"error": "..."} in place of the result.
    failed = isinstance(result, dict) and result.keys() == {"error"}
    error = result["error"] if failed else None
    if failed and not isinstance(error, str):
        raise _Mismatch("result")
    return ToolCompletePayload(
        id=_text(data, "id"),
        call_id=_optional_text(data, "call_id"),
        tool_name=_text(data, "tool_name"),
        result=None if failed else JSON(result),
        error=error,
    )


def _system_notice(event: Event) -> SystemNoticePayload:
    data = event.data
    event_id = data.get("event_id")
    if event_id is not None and (not isinstance(event_id, int) or isinstance(event_id, bool)):
        raise _Mismatch("event_id")
    return SystemNoticePayload(
        text=_text(data, "message"),
        kind=_optional_text(data, "kind") or "notice",
        event_id=None if event_id is None else strawberry.ID(str(event_id)),
    )


def _processing_changed(event: Event) -> ProcessingChangedPayload:
    value = event.data["is_processing"]
    if not isinstance(value, bool):
        raise _Mismatch("is_processing")
    return ProcessingChangedPayload(is_processing=value)


def _session_updated(event: Event) -> SessionUpdatedPayload:
    return SessionUpdatedPayload(changes=JSON(_object(event.data, "changes")))


def _session_deleted(event: Event) -> SessionDeletedPayload:
    return SessionDeletedPayload(session_id=strawberry.ID(str(event.session_id)))


def _feedback_changed(event: Event) -> FeedbackChangedPayload:
    data = _object(event.data, "feedback")
    try:
        record = FeedbackRecord(
            id=int(data["id"]),
            app=event.app,
            session_id=event.session_id,
            message_id=UUID(str(data["message_id"])),
            client_id=str(data["client_id"]),
            thumbs=data["thumbs"],
            stars=data["stars"],
            comment=str(data["comment"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            updated_at=datetime.fromisoformat(str(data["updated_at"])),
        )
    except (KeyError, TypeError, ValueError):
        raise _Mismatch("feedback") from None
    if record.thumbs not in (None, "up", "down"):
        raise _Mismatch("feedback.thumbs")
    return FeedbackChangedPayload(feedback=Feedback.from_record(record))


def _resync_required(event: Event) -> ResyncRequiredPayload:
    data = event.data
    return ResyncRequiredPayload(
        code=_text(data, "code"), text=_text(data, "message"), after=_text(data, "after")
    )


_BUILDERS: dict[str, Callable[[Event], SessionEventPayload]] = {
    MESSAGE_ADDED: _message_added,
    MESSAGE_DELTA: _message_delta,
    TITLE_CHANGED: _title_changed,
    TOOL_UPDATE: _tool_update,
    TOOL_COMPLETE: _tool_complete,
    SYSTEM_NOTICE: _system_notice,
    PROCESSING_CHANGED: _processing_changed,
    SESSION_UPDATED: _session_updated,
    SESSION_DELETED: _session_deleted,
    FEEDBACK_CHANGED: _feedback_changed,
    MESSAGE_EDITED: _message_edited,
    BRANCH_SWITCHED: _branch_switched,
    RESYNC_REQUIRED: _resync_required,
}
