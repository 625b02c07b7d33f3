"""The app registry: which tenants exist, and which one a request acts for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from models import App
from runtime import keys
from runtime.auth_throttle import AuthThrottle
from runtime.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from runtime.key_watch import KeyWatch
from settings import DEFAULT_APP, AppConfig


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the app every operation of this request is scoped to."""

    app: str
    key_prefix: str | None = None
    key_apps: tuple[str, ...] = ()

    def may_use(self, app: str) -> bool:
        return app == DEFAULT_APP or app in self.key_apps


class AppRegistry:
    def __init__(
        self,
        apps: Mapping[str, AppConfig],
        key_cache_ttl: float = 2.0,
        auth_failures_per_minute: int = 20,
    ) -> None:
        self._apps = dict(apps)
        self.verified_keys = keys.VerifiedKeys(
            ttl=key_cache_ttl, throttle=AuthThrottle(auth_failures_per_minute)
        )
        # Live connections' keys, re-checked every cache period (runtime/key_watch.py).
        self.key_watch = KeyWatch(keys.unrevoked, key_cache_ttl, forget=self.verified_keys.forget)

    def get(self, name: str) -> AppConfig:
        config = self._apps.get(name)
        if config is None:
            raise NotFound(f"unknown app {name!r}")
        return config

    def expiry(self, app: str, now: datetime) -> datetime | None:
        """When a session of `app` active at `now` expires (None: never)."""
        ttl = self.get(app).session_ttl
        return now + timedelta(seconds=ttl) if ttl > 0 else None

    def names(self) -> list[str]:
        return sorted(self._apps)

    async def sync_to_database(self) -> None:
        """Make sure every configured app has its row (sessions and keys refer to it)."""
        existing = {row.name: row for row in await App.all()}
        for config in self._apps.values():
            row = existing.get(config.name)
            if row is None:
                await App.create(name=config.name, display_name=config.display_name)
            elif row.display_name != config.display_name:
                row.display_name = config.display_name
                await row.save(update_fields=["display_name"])

    async def revoke_key(self, prefix: str) -> keys.KeyInfo:
        """Revoke, and stop honouring the key in this process at once: its open
        subscriptions and streams here close now (elsewhere, within the cache time)."""
        info = await keys.revoke_key(prefix)
        self.key_watch.revoked(prefix)
        return info

    async def aclose(self) -> None:
        await self.key_watch.aclose()

    async def authenticate(
        self, clear_key: str | None, requested_app: str | None, client: str | None = None
    ) -> Caller:
        """Resolve the caller's app from its key and the app it asked for.

        No key: only `default`. A key: the app asked for must be one it covers; with
        no app asked for, the key's own app (its first, when it covers several).
        `client` is the caller's address: unknown keys from one address are limited
        (`RateLimited`).
        """
        if requested_app is not None and requested_app not in self._apps:
            raise InvalidInput("app", f"unknown app {requested_app[:64]!r}")
        if not clear_key:
            app = requested_app or DEFAULT_APP
            if app != DEFAULT_APP:
                raise Unauthenticated(f"app {app!r} needs an app key")
            return Caller(app=DEFAULT_APP)
        info = await self.verified_keys.verify(clear_key, client)
        if info is None:
            raise Unauthenticated("unknown or revoked app key")
        if requested_app is None:
            app = info.apps[0] if info.apps else DEFAULT_APP
        elif requested_app in info.apps or requested_app == DEFAULT_APP:
            app = requested_app
        else:
            raise Forbidden(f"this key does not cover app {requested_app!r}")
        self.get(app)
        return Caller(app=app, key_prefix=info.prefix, key_apps=info.apps)
