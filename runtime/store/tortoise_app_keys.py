"""The apps and their keys in Tortoise (the store protocol's `AppKeyStore` part,
which `TortoiseStore` takes from here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from models import ApiKey, App
from runtime.errors import NotFound
from runtime.records import KeyInfo
from runtime.store.protocol import AppRow


class TortoiseAppKeys:
    async def sync_apps(self, apps: Sequence[AppRow]) -> None:
        # `INSERT ... ON CONFLICT (name) DO UPDATE`, on SQLite and PostgreSQL alike.
        rows = [
            App(name=app.name, display_name=app.display_name, search_language=app.search_language)
            for app in sorted(apps)
        ]
        await App.bulk_create(
            rows, on_conflict=["name"], update_fields=["display_name", "search_language"]
        )

    async def app_names(self) -> list[str]:
        names = await App.all().order_by("name").values_list("name", flat=True)
        return [str(name) for name in names]

    async def create_key(
        self, prefix: str, key_hash: str, label: str, apps: Sequence[str]
    ) -> KeyInfo:
        rows = await App.filter(name__in=list(apps))
        missing = sorted(set(apps) - {row.name for row in rows})
        if missing:
            raise NotFound(f"unknown app(s): {', '.join(missing)}")
        key = await ApiKey.create(prefix=prefix, key_hash=key_hash, label=label)
        await key.apps.add(*rows)
        return _key(key, [row.name for row in rows])

    async def list_keys(self) -> list[KeyInfo]:
        keys = await ApiKey.all().order_by("created_at").prefetch_related("apps")
        return [_key(key, [app.name for app in key.apps]) for key in keys]

    async def find_key(self, key_hash: str) -> KeyInfo | None:
        # One query: the key joined with its apps.
        rows = await ApiKey.filter(key_hash=key_hash).values(
            "prefix", "label", "created_at", "last_used_at", "revoked_at", "apps__name"
        )
        if not rows:
            return None
        row = rows[0]
        return KeyInfo(
            prefix=row["prefix"],
            apps=tuple(sorted(r["apps__name"] for r in rows if r["apps__name"])),
            label=row["label"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )

    async def touch_key(self, prefix: str, used_at: datetime) -> None:
        await ApiKey.filter(prefix=prefix).update(last_used_at=used_at)

    async def revoke_key(self, prefix: str, revoked_at: datetime) -> KeyInfo | None:
        key = await ApiKey.get_or_none(prefix=prefix)
        if key is None:
            return None
        if key.revoked_at is None:
            key.revoked_at = revoked_at
            await key.save(update_fields=["revoked_at"])
        await key.fetch_related("apps")
        return _key(key, [app.name for app in key.apps])

    async def unrevoked_keys(self, prefixes: Sequence[str]) -> set[str]:
        # One query: prefixes are unique and indexed.
        rows = await ApiKey.filter(prefix__in=list(prefixes), revoked_at__isnull=True).values_list(
            "prefix", flat=True
        )
        return {str(prefix) for prefix in rows}


def _key(key: ApiKey, apps: list[str]) -> KeyInfo:
    return KeyInfo(
        prefix=key.prefix,
        apps=tuple(sorted(apps)),
        label=key.label,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )
