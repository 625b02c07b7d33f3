"""Many replicas starting at once on a fresh database (a deploy, an autoscaler):
with auto-migrate on, all eight become ready, the migrations ran once, and the
schema is the one a single `server.py migrate` makes. Directly on PostgreSQL (the
database does not even exist yet) and behind PgBouncer in transaction mode with
fewer server connections than replicas (waiting for the migration lock must not
hold one)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from runtime.apps import AppRegistry
from runtime.database_url import parse_postgres_url
from runtime.migration_lock import migration_lock
from settings import load_apps
from tests.conftest import PG_ADMIN_URL, unavailable
from tests.live import cli
from tests.owned_pgbouncer import OwnedPgBouncer
from tests.processes import ServerProcess

REPLICAS = 8
PG = "postgres://postgres@127.0.0.1:5432"


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(database: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(f"{PG}/{database}", timeout=5)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


def _drop(*names: str) -> None:
    asyncio.run(_admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names)))


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """(the replicas' database, a reference one), neither existing yet."""
    names = (f"confab_start_{os.getpid()}", f"confab_start_ref_{os.getpid()}")
    try:
        _drop(*names)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("PostgreSQL", str(exc))
    yield names
    _drop(*names)


COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"""
INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"""
MIGRATIONS = "SELECT app, name, count(*) FROM tortoise_migrations GROUP BY 1, 2 ORDER BY 1, 2"


def _schema(database: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: asyncio.run(_fetch(database, sql))
        for name, sql in (("columns", COLUMNS), ("indexes", INDEXES), ("constraints", CONSTRAINTS))
    }


def _start_together(env: dict[str, str], logs: Path) -> None:
    replicas = [ServerProcess(env, logs / f"replica-{n}.log") for n in range(REPLICAS)]
    try:
        for replica in replicas:
            replica.wait_ready(timeout=150)
    finally:
        stopped = [replica.stop() for replica in replicas]
    assert all(stopped), [
        r.log()[-2000:] for r, ok in zip(replicas, stopped, strict=True) if not ok
    ]


@pytest.mark.timeout(400)
@pytest.mark.parametrize("path", ["direct", "pgbouncer"])
def test_eight_replicas_start_together_on_a_fresh_database(
    path: str, databases: tuple[str, str], apps_file: Path, tmp_path: Path
) -> None:
    name, reference = databases
    env = {
        "CONFAB_AUTO_MIGRATE": "true",
        "CONFAB_CONFIG": str(apps_file),  # several apps to sync at once
        "CONFAB_EVENT_BUS": "memory://",
    }
    if path == "direct":
        _start_together({**env, "DATABASE_URL": f"{PG}/{name}"}, tmp_path)
    else:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))  # PgBouncer routes listed ones
        bouncer = OwnedPgBouncer(name, pool_size=REPLICAS // 2)
        try:
            bouncer.start()
            bouncer_env = {**env, "DATABASE_URL": bouncer.url, "CONFAB_DB_PGBOUNCER": "true"}
            _start_together(bouncer_env, tmp_path)
        finally:
            bouncer.stop()

    cli({"DATABASE_URL": f"{PG}/{reference}"}, "migrate")
    assert _schema(name) == _schema(reference)
    migrations = asyncio.run(_fetch(name, MIGRATIONS))
    assert migrations == asyncio.run(_fetch(reference, MIGRATIONS))
    assert {count for _, _, count in migrations} == {1}  # each applied once
    apps = asyncio.run(_fetch(name, "SELECT name, display_name FROM apps ORDER BY name"))
    configured = load_apps(apps_file)
    assert apps == sorted((app.name, app.display_name) for app in configured.values())


class _OnRecord(logging.Handler):
    def __init__(self, message: str, event: asyncio.Event) -> None:
        super().__init__()
        self.message = message
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == self.message:
            self.event.set()


async def test_the_migration_lock_admits_one_process_at_a_time(
    postgres_url: str,
) -> None:
    """(`postgres_url`: skips, or fails under CI, when PostgreSQL is not there.)"""
    target = parse_postgres_url(PG_ADMIN_URL)
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with migration_lock(target):
            order.append("first in")
            first_in.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with migration_lock(target):
            order.append("second in")

    waiting = asyncio.Event()
    seen = _OnRecord("waiting for another process to finish migrating", waiting)
    lock_logger = logging.getLogger("runtime.migration_lock")
    lock_logger.addHandler(seen)
    level = lock_logger.level
    lock_logger.setLevel(logging.INFO)
    try:
        holder = asyncio.create_task(first())
        waiter = asyncio.create_task(second())
        await waiting.wait()  # the second has tried, and found the lock taken
    finally:
        lock_logger.removeHandler(seen)
        lock_logger.setLevel(level)
    assert order == ["first in"]
    release_first.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first in", "first out", "second in"]


async def test_app_sync_is_idempotent_when_replicas_race(app: Any, apps_file: Path) -> None:
    """Eight syncs at once (each once check-then-insert: a unique violation on `apps`)."""
    from models import App

    configured = load_apps(apps_file)
    await asyncio.gather(*(AppRegistry(configured).sync_to_database() for _ in range(REPLICAS)))
    rows = {row.name: row.display_name for row in await App.all()}
    # The shared test database may hold other modules' apps too; these are all there, once.
    assert {name: rows.get(name) for name in configured} == {
        name: config.display_name for name, config in configured.items()
    }
