"""What the assistant keeps beyond messages, as GraphQL shows it: wallet memories,
a thread's running summary and what each turn sent to the model."""

from __future__ import annotations

from datetime import datetime

import strawberry

from runtime.records import MemoryRecord, SummaryRecord
from runtime.records import TurnUsage as TurnUsageRecord


@strawberry.type(description="A short memory of one finished turn, kept for a wallet.")
class Memory:
    id: strawberry.ID
    content: str
    source_session_id: strawberry.ID = strawberry.field(
        description="The session it came from (it may have been deleted since, if the app "
        "keeps memories)."
    )
    created_at: datetime

    @classmethod
    def from_record(cls, record: MemoryRecord) -> Memory:
        return cls(
            id=strawberry.ID(str(record.id)),
            content=record.content,
            source_session_id=strawberry.ID(str(record.source_session_id)),
            created_at=record.created_at,
        )


@strawberry.type(description="The earlier part of a thread, summarized for the model.")
class ContextSummary:
    content: str
    up_to_seq: int = strawberry.field(description="It covers the messages up to this seq.")
    created_at: datetime

    @classmethod
    def from_record(cls, record: SummaryRecord) -> ContextSummary:
        return cls(content=record.content, up_to_seq=record.up_to_seq, created_at=record.created_at)


@strawberry.type(description="A turn, and what its first model call was sent.")
class TurnUsage:
    message_id: strawberry.ID = strawberry.field(description="The user message it answers.")
    status: str
    prompt_messages: int = strawberry.field(
        description="Messages sent to the model: the system prompt (with memories and "
        "summary) and the recent messages that fit."
    )
    prompt_tokens: int = strawberry.field(
        description="Their tokens, by the backend's count (docs/turns.md: context budget)."
    )
    created_at: datetime

    @classmethod
    def from_record(cls, record: TurnUsageRecord) -> TurnUsage:
        return cls(
            message_id=strawberry.ID(str(record.message_id)),
            status=record.status.value,
            prompt_messages=record.prompt_messages,
            prompt_tokens=record.prompt_tokens,
            created_at=record.created_at,
        )
