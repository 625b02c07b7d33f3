"""One migrating process at a time on a PostgreSQL database.

Replicas started together (a deploy, an autoscaler) would otherwise each apply
the same migrations: the second `CREATE TABLE` fails, and the loser does not start.

The lock is a transaction-scoped advisory lock (`pg_try_advisory_xact_lock`) held by
an open transaction on a connection of its own for as long as the migrations run.
Transaction-scoped, because behind PgBouncer in transaction mode a session lock
(`pg_advisory_lock`) stays on whichever server connection ran it, which the next
client then shares: an open transaction is the one thing PgBouncer keeps pinned to
one client. Polled rather than blocking, because a waiter blocked inside a
transaction would pin a PgBouncer server connection too, and a few of them could
starve the holder, whose migrations need connections of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from runtime.database_url import PostgresTarget

logger = logging.getLogger(__name__)

# A fixed advisory lock key: "confab:migrate" (any 64-bit number others do not use).
MIGRATION_LOCK_KEY = 0x636F_6E66_6162_6D67
FIRST_RETRY = 0.05
LAST_RETRY = 1.0


@asynccontextmanager
async def migration_lock(target: PostgresTarget) -> AsyncIterator[None]:
    """Hold the database's migration lock for the body (waiting for it first)."""
    conn: asyncpg.Connection = await asyncpg.connect(**target.connect_kwargs())
    try:
        delay = FIRST_RETRY
        while True:
            transaction = conn.transaction()
            await transaction.start()
            if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", MIGRATION_LOCK_KEY):
                break
            await transaction.rollback()  # never wait while holding a server connection
            if delay == FIRST_RETRY:
                logger.info("waiting for another process to finish migrating")
            await asyncio.sleep(delay)
            delay = min(delay * 2, LAST_RETRY)
        try:
            yield
        finally:
            # Ending the transaction releases the lock (nothing was written on it); a
            # connection that died released it already.
            try:
                await transaction.rollback()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("migration lock: %s while releasing", type(exc).__name__)
    finally:
        await conn.close()
