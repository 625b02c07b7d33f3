"""App keys: creation (the clear key is shown once), listing, revocation, verification.

A key looks like `cfb_<prefix>_<secret>`. Only its SHA-256 is stored: keys are long
random strings, so a slow password hash would add latency without adding safety.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from models import ApiKey, App
from runtime.auth_throttle import AuthThrottle
from runtime.errors import InvalidInput, NotFound, RateLimited
from runtime.events.envelope import utc_now

KEY_SCHEME = "cfb"
# A key's last-used time is written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    prefix: str
    apps: tuple[str, ...]
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _hash(clear_key: str) -> str:
    return hashlib.sha256(clear_key.encode()).hexdigest()


async def create_key(apps: list[str], label: str = "") -> tuple[str, KeyInfo]:
    """Create a key covering `apps` (which must exist); returns (clear key, info)."""
    if not apps:
        raise InvalidInput("app", "a key must cover at least one app")
    rows = await App.filter(name__in=apps)
    missing = sorted(set(apps) - {row.name for row in rows})
    if missing:
        raise NotFound(f"unknown app(s): {', '.join(missing)}")
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    clear = f"{prefix}_{secrets.token_hex(24)}"
    key = await ApiKey.create(prefix=prefix, key_hash=_hash(clear), label=label)
    await key.apps.add(*rows)
    return clear, _info(key, sorted(apps))


async def list_keys() -> list[KeyInfo]:
    keys = await ApiKey.all().order_by("created_at").prefetch_related("apps")
    return [_info(key, sorted(app.name for app in key.apps)) for key in keys]


async def revoke_key(prefix: str) -> KeyInfo:
    key = await ApiKey.get_or_none(prefix=prefix)
    if key is None:
        raise NotFound(f"no key with prefix {prefix!r}")
    if key.revoked_at is None:
        key.revoked_at = utc_now()
        await key.save(update_fields=["revoked_at"])
    await key.fetch_related("apps")
    return _info(key, sorted(app.name for app in key.apps))


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
        self, ttl: float = 2.0, capacity: int = 10_000, throttle: AuthThrottle | None = None
    ) -> None:
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
        info = await _verify_digest(digest)
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


async def unrevoked(prefixes: Sequence[str]) -> set[str]:
    """Which of these key prefixes name keys that exist and are not revoked: one
    query (prefixes are unique and indexed)."""
    rows = await ApiKey.filter(prefix__in=list(prefixes), revoked_at__isnull=True).values_list(
        "prefix", flat=True
    )
    return {str(prefix) for prefix in rows}


async def _verify_digest(digest: str) -> KeyInfo | None:
    """One query: the key joined with its apps."""
    rows = await ApiKey.filter(key_hash=digest).values(
        "id", "prefix", "label", "created_at", "last_used_at", "revoked_at", "apps__name"
    )
    if not rows or rows[0]["revoked_at"] is not None:
        return None
    row = rows[0]
    now = utc_now()
    last_used = row["last_used_at"]
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        await ApiKey.filter(id=row["id"]).update(last_used_at=now)
        last_used = now
    return KeyInfo(
        prefix=row["prefix"],
        apps=tuple(sorted(r["apps__name"] for r in rows if r["apps__name"])),
        label=row["label"],
        created_at=row["created_at"],
        last_used_at=last_used,
        revoked_at=None,
    )


def _info(key: ApiKey, apps: list[str]) -> KeyInfo:
    return KeyInfo(
        prefix=key.prefix,
        apps=tuple(apps),
        label=key.label,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )
