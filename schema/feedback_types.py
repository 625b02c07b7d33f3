"""Feedback on assistant messages, as GraphQL shows it (runtime/feedback.py)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from runtime.records import FeedbackRecord


@strawberry.enum(description="A thumbs rating.")
class Thumbs(Enum):
    UP = "up"
    DOWN = "down"


@strawberry.type(description="One client's rating of one assistant message.")
class Feedback:
    id: strawberry.ID
    session_id: strawberry.ID
    message_id: strawberry.ID
    client_id: str = strawberry.field(
        description="Who rated: the clientId given, else the session's wallet, else "
        '"anonymous". One rating per message per client.'
    )
    thumbs: Thumbs | None
    stars: int | None = strawberry.field(description="1 to 5, when rated with stars.")
    comment: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: FeedbackRecord) -> Feedback:
        return cls(
            id=strawberry.ID(str(record.id)),
            session_id=strawberry.ID(str(record.session_id)),
            message_id=strawberry.ID(str(record.message_id)),
            client_id=record.client_id,
            thumbs=None if record.thumbs is None else Thumbs(record.thumbs),
            stars=record.stars,
            comment=record.comment,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )
