"""Provider keys: a client's own key for a model provider (bring your own key).

One key per (app, client id, provider), encrypted at rest; only its first
characters (`key_prefix`) are ever shown again. A turn of a session whose client
saved a key for its app's provider uses that key instead of the app's.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from models import ProviderKey
from runtime.errors import InvalidInput
from runtime.events.envelope import utc_now
from runtime.validation import text_arg
from runtime.vault.cipher import Cipher, VaultError
from runtime.vault.secrets import client_id_arg

logger = logging.getLogger(__name__)

PROVIDERS = (
    "anthropic",
    "deepseek",
    "google",
    "groq",
    "mistral",
    "openai",
    "openrouter",
    "together",
    "xai",
)
KEY_PREFIX_CHARS = 6
LABEL_MAX = 200
_API_KEY = re.compile(r"[\x21-\x7e]{16,512}")


@dataclass(frozen=True, slots=True)
class ProviderKeyInfo:
    provider: str
    key_prefix: str
    label: str
    is_active: bool

    def as_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "key_prefix": self.key_prefix,
            "label": self.label,
            "is_active": self.is_active,
        }


def provider_arg(value: object) -> str:
    provider = value.strip().lower() if isinstance(value, str) else ""
    if provider not in PROVIDERS:
        shown = value[:40] if isinstance(value, str) else value
        raise InvalidInput(
            "provider", f"unknown provider {shown!r}; known providers: {', '.join(PROVIDERS)}"
        )
    return provider


def api_key_arg(value: object) -> str:
    # Never echo any of it: the reason names only what is wrong.
    if not isinstance(value, str) or not value:
        raise InvalidInput("api_key", "is required (a string)")
    if not _API_KEY.fullmatch(value):
        raise InvalidInput("api_key", "must be 16 to 512 printable ASCII characters without spaces")
    return value


def label_arg(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("label", "must be a string")
    label = text_arg("label", value).strip()
    if len(label) > LABEL_MAX:
        raise InvalidInput("label", f"must be at most {LABEL_MAX} characters, got {len(label)}")
    return label


class ProviderKeys:
    def __init__(self, cipher: Cipher) -> None:
        self._cipher = cipher

    async def save(
        self, app: str, client_id: object, provider: object, api_key: object, label: object
    ) -> ProviderKeyInfo:
        """Store the client's key for the provider, replacing any it had."""
        client = client_id_arg(client_id)
        name = provider_arg(provider)
        key = api_key_arg(api_key)
        text = label_arg(label)
        now = utc_now()
        fields: dict[str, Any] = {
            "ciphertext": self._cipher.seal(key, _context(app, client, name)),
            "key_prefix": key[:KEY_PREFIX_CHARS],
            "label": text,
            "is_active": True,
            "updated_at": now,
        }
        mine = ProviderKey.filter(app_id=app, client_id=client, provider=name)
        if not await mine.update(**fields):
            try:
                await ProviderKey.create(
                    app_id=app, client_id=client, provider=name, created_at=now, **fields
                )
            except IntegrityError:  # saved concurrently: this one replaces it
                await mine.update(**fields)
        return ProviderKeyInfo(name, key[:KEY_PREFIX_CHARS], text, True)

    async def list_keys(self, app: str, client_id: object) -> list[ProviderKeyInfo]:
        client = client_id_arg(client_id)
        rows = await ProviderKey.filter(app_id=app, client_id=client).order_by("provider")
        return [ProviderKeyInfo(r.provider, r.key_prefix, r.label, r.is_active) for r in rows]

    async def delete(self, app: str, client_id: object, provider: object) -> bool:
        client = client_id_arg(client_id)
        name = provider_arg(provider)
        deleted: int = await ProviderKey.filter(
            app_id=app, client_id=client, provider=name
        ).delete()
        return deleted > 0

    async def active_key(self, app: str, client_id: str, provider: str) -> str | None:
        """The client's active key for the provider, in clear; None without one."""
        row = await ProviderKey.get_or_none(
            app_id=app, client_id=client_id, provider=provider, is_active=True
        )
        if row is None:
            return None
        try:
            return self._cipher.open(row.ciphertext, _context(app, client_id, provider))
        except VaultError:
            logger.warning(
                "the %s key of client %r in app %r does not decrypt (was CONFAB_SECRET_KEY "
                "changed?); the app's own key is used",
                provider,
                client_id,
                app,
            )
            return None


def _context(app: str, client: str, provider: str) -> tuple[str, ...]:
    return ("provider_key", app, client, provider)
