"""Sessions, their threads, messages and system events."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Session(Model):
    id = fields.UUIDField(primary_key=True)
    app: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.App", related_name="sessions", on_delete=fields.RESTRICT
    )
    # The text id a legacy client named the session by, when it is not a UUID (the
    # `id` is then derived from it: runtime/session_ids.py).
    legacy_id = fields.CharField(max_length=128, null=True)
    # The legacy client (`client_id`) whose secrets and provider keys the session uses.
    client_id = fields.CharField(max_length=128, null=True)
    title = fields.CharField(max_length=200, null=True)
    title_source = fields.CharField(max_length=16, default="default")
    public_key = fields.CharField(max_length=64, null=True)
    user_state: dict[str, Any] | None = fields.JSONField(null=True)
    state: dict[str, Any] = fields.JSONField(default=dict)
    metadata: dict[str, Any] = fields.JSONField(default=dict)
    model = fields.CharField(max_length=128, null=True)
    is_archived = fields.BooleanField(default=False)
    is_processing = fields.BooleanField(default=False)
    # Pinned sessions never expire by TTL and are listed first.
    is_pinned = fields.BooleanField(default=False, db_default=False)
    # Bumped on every write; replicas compare it to decide whether a cached copy is stale.
    version = fields.BigIntField(default=1)
    # Id of the last system event a REST snapshot has shown (the legacy read cursor).
    events_read_upto = fields.BigIntField(default=0)
    # Id of the newest system event: a snapshot with nothing past its read cursor
    # skips the events query.
    last_event_id = fields.BigIntField(default=0, db_default=0)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    last_active_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sessions"
        indexes = (
            # In list order: pinned first, then the most recently active.
            Index(fields=("app_id", "public_key", "is_pinned", "last_active_at")),
            Index(fields=("app_id", "is_pinned", "last_active_at")),
            Index(fields=("expires_at",)),
        )


class Thread(Model):
    id = fields.UUIDField(primary_key=True)
    session: fields.ForeignKeyRelation[Session] = fields.ForeignKeyField(
        "models.Session", related_name="threads", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=200, null=True)
    is_primary = fields.BooleanField(default=False)
    # The sequence number the next message in this thread gets.
    next_seq = fields.BigIntField(default=1)
    # The end of the active path, and its parent: an append follows the leaf (the
    # same UPDATE that numbers it reads and moves them, so appends never fork).
    leaf_id = fields.UUIDField(null=True)
    leaf_parent_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "threads"
        indexes = (Index(fields=("session_id", "created_at")),)


class Message(Model):
    id = fields.UUIDField(primary_key=True)
    session: fields.ForeignKeyRelation[Session] = fields.ForeignKeyField(
        "models.Session", related_name="messages", on_delete=fields.CASCADE
    )
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="messages", on_delete=fields.CASCADE
    )
    seq = fields.BigIntField()
    role = fields.CharField(max_length=16)
    content = fields.TextField()
    tool_calls: list[dict[str, Any]] | None = fields.JSONField(null=True)
    tool_results: list[dict[str, Any]] | None = fields.JSONField(null=True)
    is_interrupted = fields.BooleanField(default=False)
    created_at = fields.DatetimeField()
    # The message tree (runtime/branches.py): the message this one follows (None for
    # a thread's first), whether it is its parent's chosen child, and whether it is
    # on the thread's active path (every ancestor chosen): reads follow that path.
    parent_id = fields.UUIDField(null=True)
    is_selected = fields.BooleanField(default=True, db_default=True)
    is_active = fields.BooleanField(default=True, db_default=True)

    class Meta:
        table = "messages"
        unique_together = (("thread_id", "seq"),)
        indexes = (Index(fields=("session_id",)), Index(fields=("thread_id", "parent_id")))


class SystemEvent(Model):
    id = fields.BigIntField(primary_key=True)
    session: fields.ForeignKeyRelation[Session] = fields.ForeignKeyField(
        "models.Session", related_name="system_events", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)
    payload: dict[str, Any] = fields.JSONField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "system_events"
        indexes = (Index(fields=("session_id", "id")),)


# The durable turn queue: a user message's claim on an answer, stored with the
# message in the same transaction, so an acknowledged message always has its turn.
# A replica runs a session's turns in `id` order while it holds the session's turn
# lease; after a crash the next holder finds them here (runtime/turns/queue.py).
class Turn(Model):
    id = fields.BigIntField(primary_key=True)  # acceptance order
    session: fields.ForeignKeyRelation[Session] = fields.ForeignKeyField(
        "models.Session", related_name="turns", on_delete=fields.CASCADE
    )
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "models.Thread", related_name="turns", on_delete=fields.CASCADE
    )
    # The message answered; a regenerated answer's turn answers it again.
    message_id = fields.UUIDField(db_index=True)
    # queued, running, done, failed, interrupted, cancelled (runtime.records.TurnStatus)
    status = fields.CharField(max_length=16, default="queued")
    attempts = fields.IntField(default=0)
    # A tool has started: the turn is never re-run after a crash (tools have effects).
    tool_started = fields.BooleanField(default=False)
    # The streaming answer, checkpointed in bounded steps, and the id clients saw.
    reply_id = fields.UUIDField(null=True)
    partial_text = fields.TextField(default="")
    # What went to the model for this turn's first call (runtime/turns/context.py).
    prompt_messages = fields.IntField(default=0, db_default=0)
    prompt_tokens = fields.IntField(default=0, db_default=0)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "turns"
        indexes = (Index(fields=("session_id", "status", "id")), Index(fields=("status",)))
