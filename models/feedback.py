"""Ratings of assistant messages (runtime/feedback.py)."""

from __future__ import annotations

from uuid import UUID

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Feedback(Model):
    """One client's rating of one assistant message: thumbs or stars, and a comment."""

    id = fields.BigIntField(primary_key=True)
    app_id = fields.CharField(max_length=64)
    session: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Session", related_name="feedback", on_delete=fields.CASCADE
    )
    message: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Message", related_name="feedback", on_delete=fields.CASCADE
    )
    # The relations' columns, which Tortoise sets beside them.
    session_id: UUID
    message_id: UUID
    client_id = fields.CharField(max_length=128)
    thumbs = fields.CharField(max_length=4, null=True)  # "up" or "down"
    stars = fields.SmallIntField(null=True)  # 1 to 5
    comment = fields.TextField(default="")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "feedback"
        unique_together = (("message_id", "client_id"),)
        indexes = (Index(fields=("app_id", "id")), Index(fields=("session_id", "id")))
