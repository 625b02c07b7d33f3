"""Database configuration, migrations and health for the Tortoise-backed store."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.api import migrate

from models import MIGRATIONS_MODULE, MODEL_MODULES
from runtime.database_url import PostgresTarget, postgres_target, redacted
from runtime.migration_lock import migration_lock
from settings import Settings

__all__ = ["apply_migrations", "forget_compiled_queries", "ping", "redacted", "tortoise_config"]

# Where `CREATE DATABASE` runs when the configured database does not exist yet.
MAINTENANCE_DATABASE = "postgres"

logger = logging.getLogger(__name__)


def tortoise_config(settings: Settings) -> dict[str, Any]:
    """The Tortoise config dict for these settings (pool sized for concurrent requests).

    PostgreSQL goes as credentials, never as a URL: Tortoise's URL parser keeps only a
    few query options, so every option of `DATABASE_URL` is translated here
    (runtime/database_url.py) and a bad one refused at start-up.
    """
    connection: str | dict[str, Any] = settings.database_url
    if not settings.is_sqlite:
        # Bounded waits (db_timeout, db_command_timeout): with the database down or
        # unreachable, requests fail fast (503); the pool reconnects when it returns.
        connection = {
            "engine": "tortoise.backends.asyncpg",
            "credentials": postgres_target(settings).tortoise_credentials(),
        }
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "migrations": MIGRATIONS_MODULE,
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def forget_compiled_queries() -> None:
    """Drop Tortoise's compiled INSERT/DELETE statements.

    Tortoise caches them per connection *name* ("default"), not per dialect, so a
    process that opens SQLite and then PostgreSQL (tests; an embedding app) would
    send SQLite's `?` placeholders to PostgreSQL. Call before each ORM start.
    """
    EXECUTOR_CACHE.clear()


async def apply_migrations(settings: Settings) -> None:
    """Apply the shipped migrations; creates the PostgreSQL database if it is missing.

    On PostgreSQL one process at a time (runtime/migration_lock.py): replicas that
    start together wait for the first, then find nothing left to apply.
    """
    config = tortoise_config(settings)
    forget_compiled_queries()
    async with AsyncExitStack() as stack:
        if not settings.is_sqlite:
            target = postgres_target(settings)
            await _create_postgres_database(target)
            await stack.enter_async_context(migration_lock(target))
        try:
            await migrate(config=config)
        finally:
            await Tortoise.close_connections()
    logger.info("database migrated: %s", redacted(settings.database_url))


async def _create_postgres_database(target: PostgresTarget) -> None:
    try:
        conn = await asyncpg.connect(**target.connect_kwargs())
    except asyncpg.InvalidCatalogNameError:
        pass  # missing: created below
    else:
        await conn.close()
        return
    conn = await asyncpg.connect(**target.connect_kwargs(database=MAINTENANCE_DATABASE))
    try:
        await conn.execute(f'CREATE DATABASE "{target.database}"')
        logger.info("created PostgreSQL database %s", target.database)
    except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
        pass  # another replica created it a moment ago
    finally:
        await conn.close()


async def ping() -> None:
    """Raise if the database cannot answer a trivial query."""
    await connections.get("default").execute_query("SELECT 1")


# For Tortoise's own CLI: `tortoise -c runtime.database.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config(Settings())
