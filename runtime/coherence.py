"""Cache coherence across replicas.

Every session write bumps its version in the database. With replicas, the
writer also raises the session's version in Redis before it answers, and a
cache hit checks that version (one round trip, or none while the replica is
provably the only writer: runtime/coherence_sole.py): a stale copy is reloaded, so a
write answered by one replica is visible to a read on any other at once. If
Redis cannot answer, the copy is treated as stale (read from the database).
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID


class Coherence(Protocol):
    async def start(self) -> None:
        """Before the first read or write; background work, if any, begins."""
        ...

    def alone(self) -> bool:
        """Whether checked copies are answered without asking (the only writer)."""
        ...

    async def is_current(self, session_id: UUID, version: int) -> bool: ...

    async def written(self, session_id: UUID, version: int) -> None: ...

    async def deleted(self, session_id: UUID) -> None: ...

    async def aclose(self) -> None: ...


class LocalCoherence:
    """One process: its cache is the only copy, always current."""

    async def start(self) -> None:
        return None

    def alone(self) -> bool:
        return True

    async def is_current(self, session_id: UUID, version: int) -> bool:
        return True

    async def written(self, session_id: UUID, version: int) -> None:
        return None

    async def deleted(self, session_id: UUID) -> None:
        return None

    async def aclose(self) -> None:
        return None
