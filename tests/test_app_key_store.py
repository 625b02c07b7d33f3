"""Apps and keys go through the store protocol (`AppKeyStore`), so a custom store
needs no Tortoise: here a dictionary-backed one serves the app registry, key
creation, verification, listing and revocation inside an empty Tortoise context
(no models, no connections: any model query would raise)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from tortoise.context import TortoiseContext

from apps_config import load_apps
from runtime import keys
from runtime.apps import AppRegistry
from runtime.errors import NotFound, Unauthenticated
from runtime.events.envelope import utc_now
from runtime.records import KeyInfo
from runtime.store import AppRow


class DictionaryStore:
    """An `AppKeyStore` in two dictionaries."""

    def __init__(self) -> None:
        self.apps: dict[str, str] = {}
        self.keys: dict[str, tuple[str, KeyInfo]] = {}  # prefix -> (hash, info)

    async def sync_apps(self, apps: Sequence[AppRow]) -> None:
        self.apps.update((app.name, app.display_name) for app in apps)

    async def app_names(self) -> list[str]:
        return sorted(self.apps)

    async def create_key(
        self, prefix: str, key_hash: str, label: str, apps: Sequence[str]
    ) -> KeyInfo:
        missing = sorted(set(apps) - set(self.apps))
        if missing:
            raise NotFound(f"unknown app(s): {', '.join(missing)}")
        info = KeyInfo(prefix, tuple(sorted(apps)), label, utc_now(), None, None)
        self.keys[prefix] = (key_hash, info)
        return info

    async def list_keys(self) -> list[KeyInfo]:
        return sorted((info for _, info in self.keys.values()), key=lambda i: i.created_at)

    async def find_key(self, key_hash: str) -> KeyInfo | None:
        return next((info for digest, info in self.keys.values() if digest == key_hash), None)

    async def touch_key(self, prefix: str, used_at: datetime) -> None:
        digest, info = self.keys[prefix]
        self.keys[prefix] = (digest, replace(info, last_used_at=used_at))

    async def revoke_key(self, prefix: str, revoked_at: datetime) -> KeyInfo | None:
        if prefix not in self.keys:
            return None
        digest, info = self.keys[prefix]
        if info.revoked_at is None:
            info = replace(info, revoked_at=revoked_at)
            self.keys[prefix] = (digest, info)
        return info

    async def unrevoked_keys(self, prefixes: Sequence[str]) -> set[str]:
        return {p for p in prefixes if p in self.keys and self.keys[p][1].revoked_at is None}


async def test_apps_and_keys_work_on_a_store_without_tortoise(apps_file: Path) -> None:
    async with TortoiseContext():
        await _use_apps_and_keys(DictionaryStore(), apps_file)


async def _use_apps_and_keys(store: DictionaryStore, apps_file: Path) -> None:
    registry = AppRegistry(load_apps(apps_file), store=store)
    try:
        await registry.sync_to_database()
        assert "default" in store.apps
        assert "alpha" in store.apps

        clear, created = await keys.create_key(["alpha"], "ci", store=store)
        assert created.apps == ("alpha",)
        assert [info.prefix for info in await keys.list_keys(store)] == [created.prefix]
        with pytest.raises(NotFound, match="nope"):
            await keys.create_key(["nope"], store=store)
        assert len(store.keys) == 1, "a refused key is not stored"

        caller = await registry.authenticate(clear, None)
        assert caller.app == "alpha"
        assert caller.key_prefix == created.prefix
        assert store.keys[created.prefix][1].last_used_at is not None, "its use was recorded"

        revoked = await registry.revoke_key(created.prefix)
        assert revoked.revoked_at is not None
        assert await keys.unrevoked([created.prefix], store) == set()
        with pytest.raises(Unauthenticated):
            await registry.authenticate(clear, None)
    finally:
        await registry.aclose()
