"""GraphQL documents registered ahead of time: the trusted set."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


# A document allowed to run in trusted-documents mode (CONFAB_GRAPHQL_TRUSTED_DOCUMENTS),
# loaded by `server.py documents load`; every replica reads the same rows.
# `hash` is what a client sends as `persistedQuery.sha256Hash` (a manifest's key, or
# the SHA-256 of `body`); `operation_hash` is the operation's identity (schema/trusted.py),
# which is what the text of a request is matched by.
# (No model docstrings: Tortoise copies them into SQL comments and splits on ";".)
class TrustedDocument(Model):
    id = fields.BigIntField(primary_key=True)
    hash = fields.CharField(max_length=64, unique=True)
    operation_hash = fields.CharField(max_length=64, db_index=True)
    operation_name = fields.CharField(max_length=200, null=True)
    body = fields.TextField()
    source = fields.CharField(max_length=500, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "trusted_documents"
