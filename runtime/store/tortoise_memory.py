"""Wallet memories, thread summaries and turn usage in the Tortoise store."""

from __future__ import annotations

from uuid import UUID, uuid4

from models import ContextSummary, Turn, WalletMemory
from runtime.events.envelope import utc_now
from runtime.records import MemoryRecord, SummaryRecord, TurnStatus, TurnUsage
from runtime.store.rows import as_uuid


class TortoiseMemories:
    async def add_memory(
        self, app: str, public_key: str, session_id: UUID, content: str, *, cascade: bool
    ) -> MemoryRecord:
        row = await WalletMemory.create(
            id=uuid4(),
            app_id=app,
            public_key=public_key,
            source_session_id=session_id,
            session_id=session_id if cascade else None,
            content=content,
            created_at=utc_now(),
        )
        return _memory(row)

    async def wallet_memories(self, app: str, public_key: str, limit: int) -> list[MemoryRecord]:
        rows = (
            await WalletMemory.filter(app_id=app, public_key=public_key)
            .order_by("-created_at", "-id")
            .limit(limit)
        )
        return [_memory(row) for row in rows]

    async def session_memories(self, session_id: UUID) -> list[MemoryRecord]:
        rows = await WalletMemory.filter(source_session_id=session_id).order_by("created_at")
        return [_memory(row) for row in rows]

    async def delete_memory(self, app: str, memory_id: UUID) -> bool:
        return bool(await WalletMemory.filter(id=memory_id, app_id=app).delete())

    async def delete_wallet_memories(self, app: str, public_key: str) -> int:
        return int(await WalletMemory.filter(app_id=app, public_key=public_key).delete())

    async def latest_summary(self, thread_id: UUID) -> SummaryRecord | None:
        row = await ContextSummary.filter(thread_id=thread_id).order_by("-up_to_seq").first()
        return None if row is None else _summary(row)

    async def add_summary(
        self, session_id: UUID, thread_id: UUID, up_to_seq: int, content: str
    ) -> SummaryRecord:
        row = await ContextSummary.create(
            session_id=session_id,
            thread_id=thread_id,
            up_to_seq=up_to_seq,
            content=content,
            created_at=utc_now(),
        )
        return _summary(row)

    async def turn_usage(self, session_id: UUID, limit: int) -> list[TurnUsage]:
        rows = await Turn.filter(session_id=session_id).order_by("-id").limit(limit)
        return [
            TurnUsage(
                id=row.id,
                message_id=as_uuid(row.message_id),
                status=TurnStatus(row.status),
                prompt_messages=row.prompt_messages,
                prompt_tokens=row.prompt_tokens,
                created_at=row.created_at,
            )
            for row in reversed(rows)
        ]


def _memory(row: WalletMemory) -> MemoryRecord:
    return MemoryRecord(
        id=as_uuid(row.id),
        app=row.app_id,
        public_key=row.public_key,
        source_session_id=as_uuid(row.source_session_id),
        content=row.content,
        created_at=row.created_at,
    )


def _summary(row: ContextSummary) -> SummaryRecord:
    return SummaryRecord(
        thread_id=as_uuid(row.thread_id),
        up_to_seq=row.up_to_seq,
        content=row.content,
        created_at=row.created_at,
    )
