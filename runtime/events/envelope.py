"""The event envelope every transport delivers: {id, type, session_id, app, ts, data}.

`id` is the cursor: it increases by one per event within a session. A session's
counter starts at the wall clock in milliseconds (the first event of a fresh log),
so ids keep increasing even when a Redis that keeps nothing on disk loses the log;
a subscriber's stale cursor is then detected instead of silently reused.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

TITLE_CHANGED = "title_changed"
TOOL_UPDATE = "tool_update"
TOOL_COMPLETE = "tool_complete"
SYSTEM_NOTICE = "system_notice"
MESSAGE_ADDED = "message_added"
MESSAGE_DELTA = "message_delta"
PROCESSING_CHANGED = "processing_changed"
SESSION_UPDATED = "session_updated"
SESSION_DELETED = "session_deleted"
FEEDBACK_CHANGED = "feedback_changed"
# The message tree (runtime/branches.py): an edit made a new version of a message,
# or the active path moved to another branch.
MESSAGE_EDITED = "message_edited"
BRANCH_SWITCHED = "branch_switched"
# A stop request, for whichever replica runs the session's turn (runtime/turns/scheduler.py).
INTERRUPT_REQUESTED = "interrupt_requested"
# Never published: told to one subscriber whose cursor cannot be resumed.
RESYNC_REQUIRED = "resync_required"

# What only the runtime publishes; clients may post other (custom) types.
INTERNAL_TYPES = frozenset(
    {
        MESSAGE_ADDED,
        MESSAGE_DELTA,
        PROCESSING_CHANGED,
        SESSION_UPDATED,
        SESSION_DELETED,
        FEEDBACK_CHANGED,
        MESSAGE_EDITED,
        BRANCH_SWITCHED,
        INTERRUPT_REQUESTED,
        RESYNC_REQUIRED,
    }
)

EVENT_TYPES = (
    TITLE_CHANGED,
    TOOL_UPDATE,
    TOOL_COMPLETE,
    SYSTEM_NOTICE,
    MESSAGE_ADDED,
    MESSAGE_DELTA,
    PROCESSING_CHANGED,
    SESSION_UPDATED,
    SESSION_DELETED,
)


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    session_id: UUID
    app: str
    ts: datetime
    data: dict[str, Any]
    # What transports derive from this event (a rendered GraphQL result, say),
    # computed by the first subscriber that needs it and shared by the rest.
    derived: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)


def body_json(
    event_type: str, session_id: UUID, app: str, ts: datetime, data: dict[str, Any]
) -> str:
    """The envelope without its id, as JSON: the id is assigned where it is stored."""
    return json.dumps(
        {
            "type": event_type,
            "session_id": str(session_id),
            "app": app,
            "ts": ts.isoformat(),
            "data": data,
        },
        separators=(",", ":"),
    )


def from_json(text: str | bytes) -> Event:
    raw = json.loads(text)
    return Event(
        id=int(raw["id"]),
        type=raw["type"],
        session_id=UUID(raw["session_id"]),
        app=raw["app"],
        ts=datetime.fromisoformat(raw["ts"]),
        data=raw["data"],
    )


def first_cursor() -> int:
    """Where a fresh per-session counter starts (see the module docstring)."""
    return int(time.time() * 1000)


def utc_now() -> datetime:
    return datetime.now(UTC)
