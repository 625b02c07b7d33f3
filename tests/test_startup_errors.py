"""A database the server cannot use stops it with one line saying what to do and
exit code 2: unreachable, refusing the credentials, missing, or behind (with
start-up migrations off). With them on (the default) a fresh PostgreSQL database
is created and migrated at start-up."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import asyncpg
import pytest

from tests.conftest import PG_ADMIN_URL
from tests.live import run_cli
from tests.processes import ROOT, ServerProcess


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONFAB_")}
    clean.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "server.py", "--port", str(_free_port())],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def _base() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0]


@pytest.fixture
def own_database(postgres_url: str) -> Iterator[str]:
    """A database name of this test's, dropped afterwards (created by the server)."""
    name = f"confab_startup_{os.getpid()}_{_free_port()}"
    yield f"{_base()}/{name}"

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def test_an_unreachable_database(postgres_url: str) -> None:
    line = one_error_line(
        serve({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{_free_port()}/x"})
    )
    assert "cannot reach the database" in line
    assert "is it running, and is DATABASE_URL right?" in line


def test_refused_credentials_never_show_the_password(postgres_url: str) -> None:
    url = f"postgresql://nobody_{os.getpid()}:hunter2@{_base().split('@', 1)[1]}/postgres"
    line = one_error_line(serve({"DATABASE_URL": url}))
    assert "refused the credentials: check the user and password in DATABASE_URL" in line
    assert "hunter2" not in line


def test_a_missing_database_without_start_up_migrations(own_database: str) -> None:
    line = one_error_line(serve({"DATABASE_URL": own_database, "CONFAB_AUTO_MIGRATE": "false"}))
    assert "does not exist: run `python server.py migrate`" in line


# What models/migrations/0011_branches.py (the newest) added.
FORGET_BRANCHES = """
ALTER TABLE messages DROP COLUMN parent_id, DROP COLUMN is_selected, DROP COLUMN is_active;
ALTER TABLE threads DROP COLUMN leaf_id, DROP COLUMN leaf_parent_id;
"""


def test_a_database_that_is_behind(own_database: str) -> None:
    migrated = run_cli({"DATABASE_URL": own_database}, "migrate")
    assert migrated.returncode == 0, migrated.stderr

    async def forget_the_last_migration() -> None:
        conn = await asyncpg.connect(own_database)
        try:
            await conn.execute(FORGET_BRANCHES)
            await conn.execute("DELETE FROM tortoise_migrations WHERE name = '0011_branches'")
        finally:
            await conn.close()

    asyncio.run(forget_the_last_migration())
    line = one_error_line(serve({"DATABASE_URL": own_database, "CONFAB_AUTO_MIGRATE": "false"}))
    assert "is behind (1 migrations not applied): run `python server.py migrate`" in line


def test_start_up_creates_and_migrates_a_fresh_database(
    own_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The default: no separate migrate step is needed, on PostgreSQL too."""
    process = ServerProcess(
        {"DATABASE_URL": own_database}, tmp_path_factory.mktemp("fresh") / "server.log"
    )
    try:
        process.wait_ready()
    finally:
        process.stop()
