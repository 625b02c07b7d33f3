"""The trusted GraphQL documents, stored in the database so every replica reads the
same set (loaded by `server.py documents load`; matched in schema/persisted.py).

The database, not Redis: the set is configuration, like app keys. It must outlive a
Redis flush or restart, exist in the embedded mode that has no Redis, and be
written by a CLI that may run while no server does. Servers read it incrementally
(rows after the last id they hold), so a replica picks up new documents with one
small query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from models import TrustedDocument


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    hash: str  # what a client sends as `persistedQuery.sha256Hash`
    operation_hash: str  # the identity of the operation's canonical form
    operation_name: str | None
    body: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: int
    hash: str
    operation_hash: str
    operation_name: str | None
    body: str
    source: str
    created_at: datetime


async def add_documents(entries: Sequence[DocumentEntry]) -> tuple[int, int]:
    """Store the entries not stored yet (by `hash`); returns (added, already there)."""
    hashes = list(dict.fromkeys(entry.hash for entry in entries))
    existing = {row.hash for row in await TrustedDocument.filter(hash__in=hashes).only("hash")}
    fresh = {entry.hash: entry for entry in entries if entry.hash not in existing}
    if fresh:
        await TrustedDocument.bulk_create(
            [
                TrustedDocument(
                    hash=entry.hash,
                    operation_hash=entry.operation_hash,
                    operation_name=entry.operation_name,
                    body=entry.body,
                    source=entry.source[:500],
                )
                for entry in fresh.values()
            ]
        )
    return len(fresh), len(existing)


async def documents_after(last_id: int) -> list[StoredDocument]:
    """Every document stored after the one with id `last_id`, oldest first."""
    rows = await TrustedDocument.filter(id__gt=last_id).order_by("id")
    return [
        StoredDocument(
            id=row.id,
            hash=row.hash,
            operation_hash=row.operation_hash,
            operation_name=row.operation_name,
            body=row.body,
            source=row.source,
            created_at=row.created_at,
        )
        for row in rows
    ]
