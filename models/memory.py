"""What the assistant keeps beyond a session's messages: a wallet's memories and
each thread's running summary (runtime/memory.py, runtime/turns/context.py)."""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class WalletMemory(Model):
    """A short note of one finished turn, kept for the wallet in its app."""

    id = fields.UUIDField(primary_key=True)
    app_id = fields.CharField(max_length=64)
    public_key = fields.CharField(max_length=64)
    # The session it came from, always (shown to the user) ...
    source_session_id = fields.UUIDField()
    # ... and, unless the app keeps memories past their session, the same session as
    # a foreign key, so deleting the session (by anyone, the janitor too) deletes them.
    session: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.Session", related_name="memories", on_delete=fields.CASCADE, null=True
    )
    content = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "wallet_memories"
        indexes = (Index(fields=("app_id", "public_key", "created_at")),)


class ContextSummary(Model):
    """A thread's messages up to `up_to_seq`, summarized once for the model's context."""

    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Session", related_name="summaries", on_delete=fields.CASCADE
    )
    thread_id = fields.UUIDField()
    up_to_seq = fields.BigIntField()
    content = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "context_summaries"
        indexes = (Index(fields=("thread_id", "up_to_seq")),)
