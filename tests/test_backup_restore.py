"""Backup and restore, as docs/operations-backup.md tells an operator to do it.

- PostgreSQL: a real server with sessions, messages, a tool run and an app key;
  `pg_dump -Fc` while it serves, `pg_restore` into a new database, `server.py
  migrate` (nothing to apply), and a second server on the restored database
  serves the same sessions and messages over REST and GraphQL; the key still works
  and new chats are stored after the restored rows.
- SQLite: a server on a SQLite file with chats going on; Python's online backup
  API (`sqlite3.Connection.backup`) and the sqlite3 shell's `.backup` copy it
  while it serves; the copies pass `PRAGMA integrity_check`, and a server started
  on a copy serves the sessions that were there.

Each test owns its databases and files (PostgreSQL: `confab_backup_<pid>` and
`confab_restore_<pid>`, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_URL, new_id, unavailable
from tests.live import cli
from tests.processes import ServerProcess
from tests.rest_client import chat, headers, ok

PG_BASE = "postgresql://postgres@127.0.0.1:5432"

READ_SESSION = """
query($id: ID!) {
  session(id: $id) {
    id app title titleSource isArchived publicKey metadata createdAt
    messages(first: 200) {
      nodes { id seq role content toolCalls toolResults isInterrupted createdAt }
    }
  }
}
"""
CREATE_SESSION = "mutation($id: ID!, $t: String!) { createSession(id: $id, title: $t) { id } }"
SEND = "mutation($id: ID!, $m: String!) { sendMessage(sessionId: $id, content: $m) { id } }"


# -- helpers ----------------------------------------------------------------------


async def admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


async def table_names(url: str) -> list[str]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' ORDER BY table_name"
        )
    finally:
        await conn.close()
    return [str(row["table_name"]) for row in rows]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{argv[0]}: {result.stderr}"
    return result


async def graphql(
    http: httpx.AsyncClient, query: str, key: str | None = None, **variables: Any
) -> dict[str, Any]:
    sent = {} if key is None else {"AOMI-APP-KEY": key}
    body = ok(
        await http.post("/graphql", json={"query": query, "variables": variables}, headers=sent)
    )
    assert isinstance(body, dict)
    return body


async def until_idle(
    http: httpx.AsyncClient, session_id: str, key: str | None = None
) -> dict[str, Any]:
    """Poll the REST snapshot until the session's turns are done; return it."""
    async with asyncio.timeout(30):
        while True:
            snapshot: dict[str, Any] = ok(
                await http.get("/api/state", headers=headers(session_id, key))
            )
            if not snapshot["is_processing"]:
                return snapshot
            await asyncio.sleep(0.1)


async def read_everything(
    url: str, sessions: dict[str, str | None]
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Each session's REST snapshot (system events aside) and GraphQL record."""
    seen: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for session_id, key in sessions.items():
            snapshot = await until_idle(http, session_id, key)
            # Each snapshot carries the system events added since the previous one.
            snapshot.pop("system_events", None)
            body = await graphql(http, READ_SESSION, key, id=session_id)
            assert "errors" not in body, body
            assert body["data"]["session"] is not None, session_id
            seen[session_id] = (snapshot, body["data"]["session"])
    return seen


async def make_history(url: str, alpha_key: str) -> dict[str, str | None]:
    """Three sessions (two apps) with chats, a tool run and a rename; ids -> key."""
    first, second, third = new_id(), new_id(), new_id()
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        ok(await chat(http, first, "hello"))
        await until_idle(http, first)
        ok(await chat(http, first, '/tool calculator {"expression": "6*7"}'))
        await until_idle(http, first)
        ok(
            await http.patch(
                f"/api/sessions/{first}", json={"title": "Kept"}, headers=headers(first)
            )
        )
        created = await graphql(http, CREATE_SESSION, id=second, t="Second")
        assert "errors" not in created, created
        sent = await graphql(http, SEND, id=second, m="over GraphQL")
        assert "errors" not in sent, sent
        await until_idle(http, second)
        ok(await chat(http, third, "hello alpha", key=alpha_key))
        await until_idle(http, third, alpha_key)
    return {first: None, second: None, third: alpha_key}


def server_env(database_url: str, apps_file: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "CONFAB_CONFIG": str(apps_file),
        "CONFAB_EVENT_BUS": "memory://",
    }


# -- PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
def pg_databases() -> Iterator[tuple[str, str]]:
    names = (f"confab_backup_{os.getpid()}", f"confab_restore_{os.getpid()}")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        unavailable("pg_dump/pg_restore", "not installed (Debian's postgresql-client)")
    try:
        asyncio.run(admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names)))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("PostgreSQL", str(exc))
    yield names
    asyncio.run(admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names)))


def test_a_postgres_dump_restored_into_a_new_database_serves_the_same_sessions(
    pg_databases: tuple[str, str], apps_file: Path, tmp_path: Path
) -> None:
    source, target = (f"{PG_BASE}/{name}" for name in pg_databases)
    source_env = server_env(source, apps_file)
    cli(source_env, "migrate")  # creates the database
    alpha_key = cli(source_env, "keys", "create", "--app", "alpha", "--label", "backup")
    original = ServerProcess(source_env, tmp_path / "original.log")
    restored: ServerProcess | None = None
    try:
        original.wait_ready()
        sessions = asyncio.run(make_history(original.url, alpha_key))
        before = asyncio.run(read_everything(original.url, sessions))
        counts = [len(before[s][0]["messages"]) for s in sessions]
        assert counts[0] >= 4, counts  # two chats, one with a tool run
        assert counts[1:] == [2, 2], counts

        # The dump is taken while the server serves (one consistent snapshot).
        dump = tmp_path / "confab.dump"
        run("pg_dump", "-Fc", "--no-owner", "--file", str(dump), f"--dbname={source}")
        asyncio.run(admin(f'CREATE DATABASE "{pg_databases[1]}"'))
        run(
            "pg_restore",
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            f"--dbname={target}",
            str(dump),
        )
        assert asyncio.run(table_names(target)) == asyncio.run(table_names(source))

        target_env = server_env(target, apps_file)
        assert cli(target_env, "migrate").startswith("migrated "), "nothing to apply"
        assert asyncio.run(table_names(target)) == asyncio.run(table_names(source))
        assert alpha_key[:12] in cli(target_env, "keys", "list")

        restored = ServerProcess(target_env, tmp_path / "restored.log")
        restored.wait_ready()
        after = asyncio.run(read_everything(restored.url, sessions))
        assert after == before
        asyncio.run(check_restored_service(restored.url, sessions, alpha_key))
    finally:
        original.stop()
        if restored is not None:
            restored.stop()


async def check_restored_service(url: str, sessions: dict[str, str | None], key: str) -> None:
    first, _, third = sessions
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        # The key, restored with its hash, still opens its app's session.
        assert (await graphql(http, READ_SESSION, key, id=third))["data"]["session"]["app"] == (
            "alpha"
        )
        assert (await graphql(http, READ_SESSION, id=third))["data"]["session"] is None
        refused = await http.post(
            "/graphql",
            json={"query": READ_SESSION, "variables": {"id": third}},
            headers={"AOMI-APP-KEY": "cfb_not_a_key_at_all"},
        )
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # New writes go after the restored rows (sequences came along).
        count = len((await until_idle(http, first))["messages"])
        ok(await chat(http, first, "after the restore"))
        snapshot = await until_idle(http, first)
        assert len(snapshot["messages"]) == count + 2, snapshot["messages"]
        assert snapshot["messages"][-2]["content"] == "after the restore"
        fresh = new_id()
        ok(await chat(http, fresh, "a new session"))
        assert (await until_idle(http, fresh))["messages"][-1]["sender"] == "agent"


# -- SQLite -------------------------------------------------------------------------


def online_backup(source: Path, copy: Path) -> None:
    """What the docs give as the Python one-liner (sqlite3's online backup API)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def session_count(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])
    finally:
        conn.close()


async def chats_during(url: str, done: asyncio.Event, minimum: int = 3) -> list[str]:
    """New chats, one after another, until `done` (and at least `minimum`)."""
    made: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for n in range(200):
            if done.is_set() and n >= minimum:
                break
            session_id = new_id()
            ok(await chat(http, session_id, f"during the backup {n}"))
            made.append(session_id)
            await asyncio.sleep(0)
    return made


async def back_up_while_chatting(url: str, source: Path, copies: list[Path]) -> list[str]:
    done = asyncio.Event()
    chatting = asyncio.create_task(chats_during(url, done))
    try:
        # The chats' turns run while each copy is taken.
        await asyncio.to_thread(online_backup, source, copies[0])
        if len(copies) > 1:
            sqlite_shell = shutil.which("sqlite3")
            assert sqlite_shell is not None
            result = await asyncio.to_thread(
                subprocess.run,
                [sqlite_shell, str(source), f".backup '{copies[1]}'"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
    finally:
        done.set()
    return await chatting


def test_a_sqlite_file_copied_online_opens_intact_and_serves(
    apps_file: Path, tmp_path: Path
) -> None:
    live = tmp_path / "live.sqlite3"
    copies = [tmp_path / "copy-api.sqlite3"]
    if shutil.which("sqlite3") is not None:
        copies.append(tmp_path / "copy-shell.sqlite3")
    env = server_env(f"sqlite://{live}", apps_file)
    env["CONFAB_AUTO_MIGRATE"] = "true"
    alpha_key = cli(env, "keys", "create", "--app", "alpha")
    original = ServerProcess(env, tmp_path / "original.log")
    restored: ServerProcess | None = None
    try:
        original.wait_ready()
        sessions = asyncio.run(make_history(original.url, alpha_key))
        before = asyncio.run(read_everything(original.url, sessions))
        during = asyncio.run(back_up_while_chatting(original.url, live, copies))
        for copy in copies:
            assert integrity(copy) == "ok", copy
            assert len(sessions) <= session_count(copy) <= len(sessions) + len(during), copy
        # The server kept serving throughout: every chat made during the backup is answered.
        asyncio.run(answered(original.url, during))
        restored = ServerProcess(server_env(f"sqlite://{copies[0]}", apps_file), tmp_path / "r.log")
        restored.wait_ready()
        assert asyncio.run(read_everything(restored.url, sessions)) == before
    finally:
        original.stop()
        if restored is not None:
            restored.stop()
    assert integrity(live) == "ok"


async def answered(url: str, session_ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for session_id in session_ids:
            snapshot = await until_idle(http, session_id)
            assert [m["sender"] for m in snapshot["messages"]][-1] == "agent", snapshot
