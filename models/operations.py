"""What operators' tools read: the replicas serving right now."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


# A serving process, refreshed on a heartbeat and removed when it stops; a row not
# refreshed for a few heartbeats is a process that died (runtime/replicas.py).
class Replica(Model):
    id = fields.CharField(primary_key=True, max_length=64)
    host = fields.CharField(max_length=255)
    pid = fields.IntField()
    started_at = fields.DatetimeField()
    seen_at = fields.DatetimeField()
    subscribers = fields.IntField(default=0)
    cached_sessions = fields.IntField(default=0)
    running_turns = fields.IntField(default=0)

    class Meta:
        table = "replicas"
