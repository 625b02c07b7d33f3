"""Database configuration, migrations and health for the Tortoise-backed store."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.api import migrate

from models import MIGRATIONS_MODULE, MODEL_MODULES
from settings import Settings

logger = logging.getLogger(__name__)


def tortoise_config(settings: Settings) -> dict[str, Any]:
    """The Tortoise config dict for these settings (pool sized for concurrent requests)."""
    credentials: dict[str, Any] | None = None
    if not settings.is_sqlite:
        # Bounded waits: with the database down or unreachable, requests fail fast
        # (503) instead of hanging; the pool reconnects when it returns.
        credentials = {
            "minsize": 1,
            "maxsize": settings.db_pool_max,
            "timeout": settings.db_timeout,
            "command_timeout": settings.db_command_timeout,
        }
    connection: str | dict[str, Any] = settings.database_url
    if credentials is not None:
        connection = _url_to_dict(settings.database_url, credentials)
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


def _url_to_dict(url: str, extra: dict[str, Any]) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "engine": "tortoise.backends.asyncpg",
        "credentials": {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 5432,
            "user": parts.username or "postgres",
            "password": parts.password or "",
            "database": parts.path.lstrip("/") or "postgres",
            **extra,
        },
    }


def redacted(url: str) -> str:
    """The URL with any password hidden, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def forget_compiled_queries() -> None:
    """Drop Tortoise's compiled INSERT/DELETE statements.

    Tortoise caches them per connection *name* ("default"), not per dialect, so a
    process that opens SQLite and then PostgreSQL (tests; an embedding app) would
    send SQLite's `?` placeholders to PostgreSQL. Call before each ORM start.
    """
    EXECUTOR_CACHE.clear()


async def apply_migrations(settings: Settings) -> None:
    """Apply the shipped migrations; creates the PostgreSQL database if it is missing."""
    config = tortoise_config(settings)
    forget_compiled_queries()
    if not settings.is_sqlite:
        await _create_postgres_database(settings)
    try:
        await migrate(config=config)
    finally:
        await Tortoise.close_connections()
    logger.info("database migrated: %s", redacted(settings.database_url))


async def _create_postgres_database(settings: Settings) -> None:
    import asyncpg

    parts = urlsplit(settings.database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
            logger.info("created PostgreSQL database %s", name)
    finally:
        await conn.close()


async def ping() -> None:
    """Raise if the database cannot answer a trivial query."""
    await connections.get("default").execute_query("SELECT 1")


# For Tortoise's own CLI: `tortoise -c runtime.database.TORTOISE_ORM makemigrations`.
TORTOISE_ORM = tortoise_config(Settings())
