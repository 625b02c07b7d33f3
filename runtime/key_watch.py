"""Live connections' app keys, re-checked together, so a revoked key's connections end.

A request's key is checked when it arrives (and trusted for `key_cache_ttl`), but a
WebSocket or an event stream opened with a key outlives that check. Rather than a
timer per connection, one task per process re-checks, every `interval`, the
distinct keys that open connections hold, in one query per `batch` keys, and tells
the connections of a key that is no longer valid. A revocation in this process
(`AppRegistry.revoke_key`) tells them at once.

The task runs only while some connection holds a key. When the database cannot be
reached, connections are left open and the check is retried: an outage should not
drop every live client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence

from runtime.errors import is_unavailable

logger = logging.getLogger(__name__)

Unrevoked = Callable[[Sequence[str]], Awaitable[Collection[str]]]


class Hold:
    """One connection's claim on a key; `release()` when the connection ends."""

    __slots__ = ("_watch", "on_revoked", "prefix")

    def __init__(self, watch: KeyWatch, prefix: str, on_revoked: Callable[[], object]) -> None:
        self._watch = watch
        self.prefix = prefix
        self.on_revoked = on_revoked

    def release(self) -> None:
        self._watch.release(self)


class KeyWatch:
    def __init__(
        self,
        unrevoked: Unrevoked,
        interval: float,
        *,
        forget: Callable[[str], object] | None = None,
        batch: int = 500,
    ) -> None:
        """`unrevoked(prefixes)` answers which are still valid; `forget(prefix)` is
        told of each revocation found (to drop the key from a cache)."""
        self._unrevoked = unrevoked
        # A zero cache time means "check every request"; connections still need a pace.
        self.interval = max(interval, 0.25)
        self._forget = forget
        self._batch = batch
        self._holders: dict[str, set[Hold]] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, prefix: str, on_revoked: Callable[[], object]) -> Hold:
        """Call `on_revoked()` (once, from the event loop) if this key is revoked."""
        hold = Hold(self, prefix, on_revoked)
        self._holders.setdefault(prefix, set()).add(hold)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="confab-key-watch")
        return hold

    def release(self, hold: Hold) -> None:
        holders = self._holders.get(hold.prefix)
        if holders is not None:
            holders.discard(hold)
            if not holders:
                del self._holders[hold.prefix]

    @property
    def connections(self) -> int:
        return sum(len(holders) for holders in self._holders.values())

    def revoked(self, prefix: str) -> None:
        """The key is revoked: tell every connection holding it."""
        if self._forget is not None:
            self._forget(prefix)
        for hold in self._holders.pop(prefix, ()):
            try:
                hold.on_revoked()
            except Exception:
                logger.exception("closing a connection of revoked key %s failed", prefix)

    async def check(self) -> None:
        """One pass over the keys held now."""
        prefixes = list(self._holders)
        for start in range(0, len(prefixes), self._batch):
            batch = prefixes[start : start + self._batch]
            valid = await self._unrevoked(batch)
            for prefix in batch:
                if prefix not in valid:
                    logger.info("key %s was revoked: closing its connections", prefix)
                    self.revoked(prefix)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.interval)
                if not self._holders:
                    return
                try:
                    await self.check()
                except Exception as exc:
                    if is_unavailable(exc):
                        logger.warning("cannot re-check live keys (retrying): %r", exc)
                    else:
                        logger.exception("re-checking live keys failed (retrying)")
        finally:
            if self._task is asyncio.current_task():
                self._task = None


class ConnectionGuard:
    """Ends one long-lived connection when the key it authenticated with is revoked.

    `close` runs once, in a task of its own: a revocation is noticed in the watch's
    task or in a request that revokes the key, and neither should wait on a socket.
    """

    def __init__(self, watch: KeyWatch, close: Callable[[], Awaitable[None]]) -> None:
        self._watch = watch
        self._close = close
        self._hold: Hold | None = None
        self._closing: asyncio.Task[None] | None = None  # referenced so it is not collected

    @property
    def revoked(self) -> bool:
        return self._closing is not None

    def watch(self, prefix: str | None) -> None:
        """Guard the connection's (new) key; None for a connection without one."""
        self.release()
        if prefix is not None and not self.revoked:
            self._hold = self._watch.hold(prefix, self._on_revoked)

    def release(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None

    def _on_revoked(self) -> None:
        self._hold = None
        self._closing = asyncio.create_task(self._run_close(), name="confab-revoked-close")

    async def _run_close(self) -> None:
        try:
            await self._close()
        except Exception as exc:  # the client may have left in the meantime
            logger.debug("closing a revoked key's connection: %r", exc)
