"""Ratings of assistant messages in the Tortoise store."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tortoise.exceptions import IntegrityError

from models import Feedback
from runtime.events.envelope import utc_now
from runtime.records import FeedbackRecord
from runtime.store.rows import as_uuid


class TortoiseFeedback:
    async def rate(
        self,
        app: str,
        session_id: UUID,
        message_id: UUID,
        client_id: str,
        rating: tuple[str | None, int | None],
        comment: str,
    ) -> FeedbackRecord:
        thumbs, stars = rating
        now = utc_now()
        changes: dict[str, Any] = {
            "thumbs": thumbs,
            "stars": stars,
            "comment": comment,
            "updated_at": now,
        }
        for _ in range(2):  # a concurrent first rating by the same client: update it
            existing = await Feedback.get_or_none(message_id=message_id, client_id=client_id)
            if existing is not None:
                await Feedback.filter(id=existing.id).update(**changes)
                await existing.refresh_from_db()
                return _record(existing)
            try:
                row = await Feedback.create(
                    app_id=app,
                    session_id=session_id,
                    message_id=message_id,
                    client_id=client_id,
                    created_at=now,
                    **changes,
                )
            except IntegrityError:
                continue
            return _record(row)
        raise RuntimeError("a rating kept changing while it was stored")

    async def session_feedback(self, session_id: UUID, limit: int) -> list[FeedbackRecord]:
        rows = await Feedback.filter(session_id=session_id).order_by("id").limit(limit)
        return [_record(row) for row in rows]

    async def app_feedback(self, app: str, limit: int, before: int | None) -> list[FeedbackRecord]:
        rows = Feedback.filter(app_id=app)
        if before is not None:
            rows = rows.filter(id__lt=before)
        return [_record(row) for row in await rows.order_by("-id").limit(limit)]


def _record(row: Feedback) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id,
        app=row.app_id,
        session_id=as_uuid(row.session_id),
        message_id=as_uuid(row.message_id),
        client_id=row.client_id,
        thumbs=row.thumbs,
        stars=row.stars,
        comment=row.comment,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
