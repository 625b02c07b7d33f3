"""Leases: at most one holder of a name at a time, for a bounded time.

With Redis they hold across replicas (and expire if their holder dies); in the
embedded mode there is one process, so an in-process table is enough.
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol


class Leases(Protocol):
    holder: str

    async def acquire(self, name: str, seconds: float) -> bool: ...

    async def renew(self, name: str, seconds: float) -> bool: ...

    async def release(self, name: str) -> None: ...

    async def held(self, name: str) -> bool:
        """Whether anyone (any replica) holds the lease now."""
        ...

    async def aclose(self) -> None: ...


class MemoryLeases:
    def __init__(self) -> None:
        self.holder = f"process-{uuid.uuid4().hex[:8]}"
        self._until: dict[str, float] = {}

    async def acquire(self, name: str, seconds: float) -> bool:
        now = time.monotonic()
        if self._until.get(name, 0) > now:
            return False
        self._until[name] = now + seconds
        return True

    async def renew(self, name: str, seconds: float) -> bool:
        if name not in self._until:
            return False
        self._until[name] = time.monotonic() + seconds
        return True

    async def release(self, name: str) -> None:
        self._until.pop(name, None)

    async def held(self, name: str) -> bool:
        return self._until.get(name, 0) > time.monotonic()

    async def aclose(self) -> None:
        return None
