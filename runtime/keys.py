"""App keys: creation (the clear key is shown once), listing, revocation, verification.

A key looks like `cfb_<prefix>_<secret>`. Only its SHA-256 is stored: keys are long
random strings, so a slow password hash would add latency without adding safety.
Keys are stored by the store (`AppKeyStore`); without one named, the Tortoise store
(the command line's, and tests').
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections.abc import Sequence
from datetime import timedelta

from runtime.auth_throttle import AuthThrottle
from runtime.errors import InvalidInput, NotFound, RateLimited
from runtime.events.envelope import utc_now
from runtime.records import KeyInfo
from runtime.store import AppKeyStore, create_store

KEY_SCHEME = "cfb"
# A key's last-used time is written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)

__all__ = ["KeyInfo", "VerifiedKeys", "create_key", "list_keys", "revoke_key", "unrevoked"]


def _hash(clear_key: str) -> str:
    return hashlib.sha256(clear_key.encode()).hexdigest()


def _store(store: AppKeyStore | None) -> AppKeyStore:
    return create_store() if store is None else store


async def create_key(
    apps: list[str], label: str = "", store: AppKeyStore | None = None
) -> tuple[str, KeyInfo]:
    """Create a key covering `apps` (which must exist); returns (clear key, info)."""
    if not apps:
        raise InvalidInput("app", "a key must cover at least one app")
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    clear = f"{prefix}_{secrets.token_hex(24)}"
    return clear, await _store(store).create_key(prefix, _hash(clear), label, apps)


async def list_keys(store: AppKeyStore | None = None) -> list[KeyInfo]:
    return await _store(store).list_keys()


async def revoke_key(prefix: str, store: AppKeyStore | None = None) -> KeyInfo:
    info = await _store(store).revoke_key(prefix, utc_now())
    if info is None:
        raise NotFound(f"no key with prefix {prefix!r}")
    return info


async def unrevoked(prefixes: Sequence[str], store: AppKeyStore | None = None) -> set[str]:
    """Which of these key prefixes name keys that exist and are not revoked."""
    return await _store(store).unrevoked_keys(prefixes)


class VerifiedKeys:
    """Recently verified keys, so a busy client does not cost a query per request.

    An entry lives `ttl` seconds: a key revoked elsewhere (the CLI, another
    replica) stops working within that time; revoked here, at once. Unknown keys
    are remembered for `ttl` too, so repeating one bad key costs one query per
    `ttl` whoever sends it; and a client address that keeps sending unknown keys
    is refused before any query (`AuthThrottle`). A key verified here before skips
    the throttle even once its entry is stale: a guesser cannot forge one, so a
    valid key keeps working from an address that also guesses.
    """

    def __init__(
        self,
        ttl: float = 2.0,
        capacity: int = 10_000,
        throttle: AuthThrottle | None = None,
        store: AppKeyStore | None = None,
    ) -> None:
        self._store = _store(store)
        self.ttl = ttl
        self.capacity = capacity
        self.throttle = AuthThrottle(per_minute=0) if throttle is None else throttle
        self._entries: dict[str, tuple[float, KeyInfo]] = {}
        self._unknown: dict[str, float] = {}  # digest -> until when it is known bad
        # Database lookups made, and unknown keys answered without one (tests and
        # operators read these to see the caches work).
        self.stats = {"queries": 0, "unknown_cached": 0, "throttled": 0}

    async def verify(self, clear_key: str, client: str | None = None) -> KeyInfo | None:
        """The key's info, or None if unknown or revoked. `client` (its address)
        is charged for the failure; raises `RateLimited` when it has no more."""
        digest = _hash(clear_key.strip())
        cached = self._entries.get(digest)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        if cached is None:
            self._check_client(client, now)
            if self._unknown.get(digest, 0.0) > now:
                self.stats["unknown_cached"] += 1
                self._failed(client, now)
                return None
        self.stats["queries"] += 1
        info = await self._verified(digest)
        if info is None:
            self._entries.pop(digest, None)
            self._remember_unknown(digest, now)
            self._failed(client, now)
            return None
        if len(self._entries) >= self.capacity:
            self._entries.clear()
        self._entries[digest] = (now + self.ttl, info)
        self._unknown.pop(digest, None)
        return info

    def forget(self, prefix: str) -> None:
        for digest, (_, info) in list(self._entries.items()):
            if info.prefix == prefix:
                del self._entries[digest]

    def _check_client(self, client: str | None, now: float) -> None:
        if client is None:
            return
        try:
            self.throttle.check(client, now)
        except RateLimited:
            self.stats["throttled"] += 1
            raise

    def _failed(self, client: str | None, now: float) -> None:
        if client is not None:
            self.throttle.failed(client, now)

    def _remember_unknown(self, digest: str, now: float) -> None:
        unknown = self._unknown
        unknown.pop(digest, None)
        while len(unknown) >= self.capacity:  # the oldest first: dicts keep insertion order
            del unknown[next(iter(unknown))]
        unknown[digest] = now + self.ttl

    async def _verified(self, digest: str) -> KeyInfo | None:
        """The key if it exists and is not revoked, its use recorded (at most once
        per `LAST_USED_RESOLUTION`)."""
        info = await self._store.find_key(digest)
        if info is None or info.revoked_at is not None:
            return None
        now = utc_now()
        if info.last_used_at is None or now - info.last_used_at > LAST_USED_RESOLUTION:
            await self._store.touch_key(info.prefix, now)
            info = dataclasses.replace(info, last_used_at=now)
        return info
