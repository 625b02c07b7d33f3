"""What legacy clients entrust to the server: secrets their tools use, and their own
model provider keys. Values are stored encrypted (runtime/vault)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


# A client's secret: tools receive the value when a call's arguments hold its handle.
class ClientSecret(Model):
    id = fields.BigIntField(primary_key=True)
    app: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.App", related_name="client_secrets", on_delete=fields.CASCADE
    )
    client_id = fields.CharField(max_length=128)
    name = fields.CharField(max_length=64)
    ciphertext = fields.BinaryField()
    created_at = fields.DatetimeField()
    last_used_at = fields.DatetimeField()
    # Idle expiry: pushed back whenever a tool uses the secret.
    expires_at = fields.DatetimeField()

    class Meta:
        table = "client_secrets"
        unique_together = (("app_id", "client_id", "name"),)
        indexes = (("expires_at",),)


# A client's own key for a model provider (bring your own key).
class ProviderKey(Model):
    id = fields.BigIntField(primary_key=True)
    app: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.App", related_name="provider_keys", on_delete=fields.CASCADE
    )
    client_id = fields.CharField(max_length=128)
    provider = fields.CharField(max_length=32)
    ciphertext = fields.BinaryField()
    key_prefix = fields.CharField(max_length=16)
    label = fields.CharField(max_length=200, default="")
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "provider_keys"
        unique_together = (("app_id", "client_id", "provider"),)
