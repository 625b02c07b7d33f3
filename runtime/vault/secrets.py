"""Client secrets: values a legacy client hands over so its tools can use them.

A secret belongs to one (app, client id) and has a name; the client and the model
only ever see its handle `$SECRET:name`. Values are encrypted at rest (cipher.py),
bounded in size and count, and expire after `secret_idle_seconds` without use
(resolution pushes the expiry back). Expired secrets never resolve; the janitor
deletes them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models import ClientSecret
from runtime.errors import InvalidInput
from runtime.events.envelope import utc_now
from runtime.validation import opaque_id_arg
from runtime.vault.cipher import Cipher, VaultError
from runtime.vault.handles import NAME, handle
from settings import Settings, SettingsError

logger = logging.getLogger(__name__)

# Resolution writes the new expiry at most this often per secret (less for tiny
# idle times, so a secret in use never expires).
TOUCH_RESOLUTION = timedelta(seconds=60)


def client_id_arg(value: object) -> str:
    if value is None or value == "":
        raise InvalidInput("client_id", "is required (the id of the client the secrets belong to)")
    if not isinstance(value, str):
        raise InvalidInput("client_id", "must be a string")
    return opaque_id_arg("client_id", value)


def name_arg(field: str, value: object) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        shown = value[:60] if isinstance(value, str) else value
        raise InvalidInput(
            field, f"secret names are 1 to 64 letters, digits, '_', '.' or '-', got {shown!r}"
        )
    return value


class ClientSecrets:
    def __init__(self, cipher: Cipher, settings: Settings) -> None:
        for name, value in (
            ("CONFAB_SECRET_IDLE_SECONDS", settings.secret_idle_seconds),
            ("CONFAB_SECRETS_PER_CLIENT", settings.secrets_per_client),
            ("CONFAB_SECRET_MAX_BYTES", settings.secret_max_bytes),
        ):
            if value < 1:
                raise SettingsError(f"{name} must be at least 1, got {value}")
        self._cipher = cipher
        self.idle = timedelta(seconds=settings.secret_idle_seconds)
        self.per_client = settings.secrets_per_client
        self.max_bytes = settings.secret_max_bytes
        self._touch_every = min(TOUCH_RESOLUTION, self.idle / 4)

    async def ingest(self, app: str, client_id: object, secrets: object) -> dict[str, str]:
        """Store (or replace) the client's secrets; returns their handles. All or
        nothing: every item is checked, and the count, before anything is written."""
        client = client_id_arg(client_id)
        batch = self._checked(secrets)
        for attempt in (1, 2):
            try:
                await self._write(app, client, batch)
                break
            except IntegrityError:
                # The same name stored concurrently by another request: do it again.
                if attempt == 2:
                    raise
        return {name: handle(name) for name in batch}

    def _checked(self, secrets: object) -> dict[str, str]:
        if not isinstance(secrets, Mapping):
            raise InvalidInput("secrets", "must be a JSON object of {name: value}")
        batch: dict[str, str] = {}
        for name, value in secrets.items():
            name_arg("secrets", name)
            where = f"secrets.{name}"
            if not isinstance(value, str) or not value:
                raise InvalidInput(where, "must be a non-empty string")
            try:
                size = len(value.encode())
            except UnicodeEncodeError:
                raise InvalidInput(where, "is not valid Unicode text") from None
            if size > self.max_bytes:
                raise InvalidInput(where, f"must be at most {self.max_bytes} bytes, got {size}")
            batch[name] = value
        if len(batch) > self.per_client:
            raise self._too_many(0, len(batch))
        return batch

    def _too_many(self, kept: int, added: int) -> InvalidInput:
        return InvalidInput(
            "secrets",
            f"a client may keep at most {self.per_client} secrets; it has {kept} others "
            f"and this request adds {added}",
        )

    async def _write(self, app: str, client: str, batch: Mapping[str, str]) -> None:
        now = utc_now()
        async with in_transaction() as conn:
            mine = ClientSecret.filter(app_id=app, client_id=client)
            await mine.filter(expires_at__lte=now).using_db(conn).delete()
            names = await mine.using_db(conn).values_list("name", flat=True)
            kept = len(set(map(str, names)) - set(batch))
            if kept + len(batch) > self.per_client:
                raise self._too_many(kept, len(batch))
            await mine.filter(name__in=list(batch)).using_db(conn).delete()
            await ClientSecret.bulk_create(
                [
                    ClientSecret(
                        app_id=app,
                        client_id=client,
                        name=name,
                        ciphertext=self._cipher.seal(value, _context(app, client, name)),
                        created_at=now,
                        last_used_at=now,
                        expires_at=now + self.idle,
                    )
                    for name, value in batch.items()
                ],
                using_db=conn,
            )

    async def clear(self, app: str, client_id: object) -> int:
        client = client_id_arg(client_id)
        deleted: int = await ClientSecret.filter(app_id=app, client_id=client).delete()
        return deleted

    async def delete(self, app: str, client_id: object, name: object) -> bool:
        client = client_id_arg(client_id)
        secret = name_arg("name", name)
        deleted: int = await ClientSecret.filter(app_id=app, client_id=client, name=secret).delete()
        return deleted > 0

    async def names(self, app: str, client_id: str) -> list[str]:
        """The client's live secrets (not their values)."""
        rows = await ClientSecret.filter(
            app_id=app, client_id=client_id, expires_at__gt=utc_now()
        ).values_list("name", flat=True)
        return sorted(map(str, rows))

    async def resolve(self, app: str, client_id: str, names: Collection[str]) -> dict[str, str]:
        """The values of those of `names` the client has (and that have not
        expired); using them pushes their expiry back."""
        wanted = [name for name in names if NAME.fullmatch(name)]
        if not wanted:
            return {}
        now = utc_now()
        rows = await ClientSecret.filter(
            app_id=app, client_id=client_id, name__in=wanted, expires_at__gt=now
        )
        values: dict[str, str] = {}
        for row in rows:
            try:
                values[row.name] = self._cipher.open(
                    row.ciphertext, _context(app, client_id, row.name)
                )
            except VaultError:
                logger.warning(
                    "secret %r of client %r in app %r does not decrypt "
                    "(was CONFAB_SECRET_KEY changed?); it is left unresolved",
                    row.name,
                    client_id,
                    app,
                )
        stale = [row.id for row in rows if now - row.last_used_at >= self._touch_every]
        if stale:
            await ClientSecret.filter(id__in=stale).update(
                last_used_at=now, expires_at=now + self.idle
            )
        return values

    async def sweep(self, batch: int = 500) -> int:
        """Delete expired secrets, at most `batch`; how many went."""
        ids = (
            await ClientSecret.filter(expires_at__lte=utc_now())
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            return 0
        deleted: int = await ClientSecret.filter(id__in=list(ids)).delete()
        return deleted


def _context(app: str, client: str, name: str) -> tuple[str, ...]:
    return ("secret", app, client, name)
