"""The app registry: which tenants exist, and which one a request acts for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from runtime import keys
from runtime.auth_throttle import AuthThrottle
from runtime.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from runtime.key_watch import KeyWatch
from runtime.records import KeyInfo
from runtime.store import AppKeyStore, AppRow, create_store
from settings import DEFAULT_APP, AppConfig


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the app every operation of this request is scoped to."""

    app: str
    key_prefix: str | None = None
    key_apps: tuple[str, ...] = ()
    # Known only by a session id (no key, no app, no listed origin): the legacy
    # bearer capability. Such a caller follows the session into whichever app
    # creates or claims it (an update stream opened before the session exists).
    bearer: bool = False
    # The peer address the request came from (rate limits count per client).
    client: str | None = None

    def may_use(self, app: str) -> bool:
        return app == DEFAULT_APP or app in self.key_apps

    @property
    def has_key(self) -> bool:
        return self.key_prefix is not None


class AppRegistry:
    def __init__(
        self,
        apps: Mapping[str, AppConfig],
        key_cache_ttl: float = 2.0,
        auth_failures_per_minute: int = 20,
        store: AppKeyStore | None = None,
    ) -> None:
        """`store` holds the apps' rows and their keys (the Tortoise store if None)."""
        self._apps = dict(apps)
        self._store = create_store() if store is None else store
        # Which app a listed web origin acts in (settings check each is listed once).
        self._origin_apps = {
            origin: config.name for config in apps.values() for origin in config.origins
        }
        self.verified_keys = keys.VerifiedKeys(
            ttl=key_cache_ttl, throttle=AuthThrottle(auth_failures_per_minute), store=self._store
        )
        # Live connections' keys, re-checked every cache period (runtime/key_watch.py).
        self.key_watch = KeyWatch(
            self._store.unrevoked_keys, key_cache_ttl, forget=self.verified_keys.forget
        )

    def get(self, name: str) -> AppConfig:
        config = self._apps.get(name)
        if config is None:
            raise NotFound(f"unknown app {name!r}")
        return config

    def expiry(self, app: str, now: datetime) -> datetime | None:
        """When a session of `app` active at `now` expires (None: never)."""
        ttl = self.get(app).session_ttl
        return now + timedelta(seconds=ttl) if ttl > 0 else None

    def model_arg(self, app: str, field: str, model: str) -> str:
        """`model` if `app` offers it; `InvalidInput` (naming `field`) otherwise."""
        offered = self.get(app).model.models
        if model not in offered:
            raise InvalidInput(field, f"unknown model {model!r}; this app offers {list(offered)}")
        return model

    def names(self) -> list[str]:
        return sorted(self._apps)

    def app_of_origin(self, origin: str | None) -> str | None:
        """The app whose frontends' origins include `origin` (None: no app's)."""
        return None if not origin else self._origin_apps.get(origin.strip().lower())

    def keyless_listing_apps(self) -> tuple[str, ...]:
        """The apps a keyless wallet listing covers: `default`, and every app that
        chose the legacy rule that a wallet's session list is not secret."""
        flagged = (c.name for c in self._apps.values() if c.keyless_wallet_listing)
        return (DEFAULT_APP, *sorted(name for name in flagged if name != DEFAULT_APP))

    async def sync_to_database(self) -> None:
        """Make sure every configured app has its row (sessions and keys refer to it):
        one upsert, never check-then-insert, since replicas starting together on a
        fresh database would race to insert the same row."""
        await self._store.sync_apps(
            [
                AppRow(config.name, config.display_name, config.search_language)
                for config in self._apps.values()
            ]
        )

    async def revoke_key(self, prefix: str) -> KeyInfo:
        """Revoke, and stop honouring the key in this process at once: its open
        subscriptions and streams here close now (elsewhere, within the cache time)."""
        info = await keys.revoke_key(prefix, self._store)
        self.key_watch.revoked(prefix)
        return info

    async def aclose(self) -> None:
        await self.key_watch.aclose()

    async def authenticate(
        self,
        clear_key: str | None,
        requested_app: str | None,
        client: str | None = None,
        origin_app: str | None = None,
    ) -> Caller:
        """Resolve the caller's app from its key and the app it asked for.

        No key: `default`, or `origin_app` (the app whose listed web origin the
        request came from: the legacy keyless trust, which the transport decides to
        honour). A key: the app asked for must be one it covers; with no app asked
        for, the key's own app (its first, when it covers several). `client` is the
        caller's address: unknown keys from one address are limited (`RateLimited`).
        """
        if requested_app is not None and requested_app not in self._apps:
            raise InvalidInput("app", f"unknown app {requested_app[:64]!r}")
        if not clear_key:
            app = requested_app or origin_app or DEFAULT_APP
            if app == DEFAULT_APP:
                return Caller(app=DEFAULT_APP, client=client)
            if app == origin_app:
                return Caller(app=app, key_apps=(app,), client=client)
            raise Unauthenticated(f"app {app!r} needs an app key")
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
        return Caller(app=app, key_prefix=info.prefix, key_apps=info.apps, client=client)
