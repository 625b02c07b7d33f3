"""Tenants (apps) and the API keys that grant access to them."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


# A tenant. Rows mirror the config file, which is the authority.
# (No model docstrings: Tortoise copies them into SQL comments and splits on ";".)
class App(Model):
    name = fields.CharField(primary_key=True, max_length=64)
    display_name = fields.CharField(max_length=200)
    # The PostgreSQL text search configuration the app's new rows are indexed with
    # (a trigger copies it into each session, thread and message: runtime/search.py).
    search_language = fields.CharField(max_length=32, default="english", db_default="english")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "apps"


# An app key, stored as a SHA-256 hash: the clear key is shown once at creation.
class ApiKey(Model):
    id = fields.IntField(primary_key=True)
    prefix = fields.CharField(max_length=32, unique=True)
    key_hash = fields.CharField(max_length=64, unique=True)
    label = fields.CharField(max_length=200, default="")
    apps: fields.ManyToManyRelation[App] = fields.ManyToManyField(
        "models.App", related_name="api_keys", through="api_key_apps"
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_keys"
