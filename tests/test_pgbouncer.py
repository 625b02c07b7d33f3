"""Confab behind PgBouncer in transaction mode, as an operator runs it: a real server
process whose DATABASE_URL points at a PgBouncer of the test's own, with
`CONFAB_DB_PGBOUNCER=true`. Every REST and GraphQL call succeeds, and so does a
restart (named prepared statements left on PgBouncer's server connections by the
previous process used to break it)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_URL, new_id, new_wallet, unavailable
from tests.owned_pgbouncer import OwnedPgBouncer
from tests.processes import ServerProcess

STORIES = 50  # x 6 calls = 300 per server run
CONCURRENT_STORIES = 10
SEND = """
mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id isProcessing } }"""
READ = "query($s: ID!) { session(id: $s) { id title } }"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """An empty database of this test's own (PgBouncer only routes databases it lists)."""
    name = f"confab_pgb_{os.getpid()}"
    try:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable("PostgreSQL", str(exc))
    yield name
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pgbouncer(fresh_database: str) -> Iterator[OwnedPgBouncer]:
    bouncer = OwnedPgBouncer(fresh_database)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()


class Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.failures: list[str] = []

    def check(self, response: httpx.Response, graphql: bool = False) -> Any:
        body: Any = response.json() if response.status_code == 200 else None
        if response.status_code != 200 or (graphql and body.get("errors")):
            self.failures.append(
                f"{response.request.url.path}: {response.status_code} {response.text[:300]}"
            )
            return None
        self.ok += 1
        return body


async def _story(http: httpx.AsyncClient, tally: Tally, session_id: str) -> None:
    """Six calls a frontend makes: REST create, chat, state, list; GraphQL send, read."""
    wallet = new_wallet()
    sent = {"X-Session-Id": session_id}
    tally.check(await http.post("/api/sessions", json={"public_key": wallet}, headers=sent))
    tally.check(await http.post("/api/chat", params={"message": "hello"}, headers=sent))
    tally.check(await http.get("/api/state", headers=sent))
    tally.check(await http.get("/api/sessions", params={"public_key": wallet}))
    query = {"query": SEND, "variables": {"s": session_id, "c": "and again"}}
    tally.check(await http.post("/graphql", json=query), graphql=True)
    query = {"query": READ, "variables": {"s": session_id}}
    tally.check(await http.post("/graphql", json=query), graphql=True)


async def _run_stories(base_url: str, stories: int = STORIES) -> tuple[Tally, list[str]]:
    tally = Tally()
    sessions = [new_id() for _ in range(stories)]
    gate = asyncio.Semaphore(CONCURRENT_STORIES)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

        async def guarded(session_id: str) -> None:
            async with gate:
                await _story(http, tally, session_id)

        await asyncio.gather(*(guarded(session_id) for session_id in sessions))
    return tally, sessions


async def _wait_until_answered(base_url: str, sessions: list[str], timeout: float = 60) -> None:
    """Every turn (run in the background, writing through PgBouncer too) finished
    with both answers stored."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        pending = list(sessions)
        while pending:
            assert time.monotonic() < deadline, f"turns still running in {pending[:3]}"
            still = []
            for session_id in pending:
                state = (await http.get("/api/state", headers={"X-Session-Id": session_id})).json()
                senders = [m["sender"] for m in state["messages"] if not m.get("is_streaming")]
                if state["is_processing"] or senders.count("agent") < 2:
                    still.append(session_id)
            pending = still
            if pending:
                await asyncio.sleep(0.2)


def _serve_and_call(env: dict[str, str], log: Path) -> list[str]:
    server = ServerProcess(env, log)
    try:
        server.wait_ready(timeout=60)
        tally, sessions = asyncio.run(_run_stories(server.url))
        assert tally.failures == [], tally.failures[:5]
        assert tally.ok == 6 * STORIES == 300
        asyncio.run(_wait_until_answered(server.url, sessions))
    finally:
        graceful = server.stop()
    text = server.log()
    assert graceful, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert " ERROR " not in text, text[-3000:]
    return sessions


def test_300_calls_succeed_behind_pgbouncer_transaction_mode_and_after_a_restart(
    pgbouncer: OwnedPgBouncer, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": pgbouncer.url,
        "CONFAB_DB_PGBOUNCER": "true",
        "CONFAB_AUTO_MIGRATE": "true",  # the first start migrates through PgBouncer
        "CONFAB_EVENT_BUS": "memory://",
    }
    first = _serve_and_call(env, tmp_path / "first.log")
    # The restart: PgBouncer's server connections are the same ones the first
    # process used; the second process starts (and migrates, finding nothing) on them.
    second = _serve_and_call(env, tmp_path / "second.log")
    assert not set(first) & set(second)
    # Confab's traffic really went through PgBouncer.
    assert f"login attempt: db={pgbouncer.database}" in pgbouncer.log()


def test_the_url_option_works_like_the_setting(pgbouncer: OwnedPgBouncer, tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"{pgbouncer.url}?pgbouncer=true&application_name=confab-pgb",
        "CONFAB_AUTO_MIGRATE": "true",
        "CONFAB_EVENT_BUS": "memory://",
    }
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        server.wait_ready(timeout=60)
        tally, _ = asyncio.run(_run_stories(server.url, stories=10))
        with httpx.Client(base_url=server.url) as http:
            ready = http.get("/readyz").json()
    finally:
        server.stop()
    assert tally.failures == [], tally.failures[:5]
    assert tally.ok == 60
    assert ready["database"] == "ok"
