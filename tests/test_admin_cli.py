"""`server.py sessions ...` and `server.py stats`, run as an operator would, next to
a serving replica (PostgreSQL + Redis): what the CLI deletes, the replica stops
serving at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import new_id, new_wallet
from tests.live import run_cli
from tests.processes import ServerProcess
from tests.rest_client import (
    assert_error,
    chat_and_wait,
    create_session,
    headers,
    ok,
    updates,
)

HEARTBEAT = "0.2"


@pytest.fixture(scope="module")
def admin_env(live_env: dict[str, str]) -> dict[str, str]:
    return {**live_env, "CONFAB_HEARTBEAT_SECONDS": HEARTBEAT}


@pytest.fixture(scope="module")
def admin_server(
    admin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    process = ServerProcess(admin_env, tmp_path_factory.mktemp("admin") / "server.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


admin = run_cli


def listed(env: dict[str, str], *filters: str) -> list[dict[str, Any]]:
    result = admin(env, "sessions", "list", "--json", *filters)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


async def test_list_show_export_and_delete(
    admin_server: ServerProcess, admin_env: dict[str, str], alpha_cli_key: str, tmp_path: Path
) -> None:
    wallet = new_wallet()
    plain, archived, keyed = new_id(), new_id(), new_id()
    opaque = f"cli-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=admin_server.url, timeout=10) as http:
        await chat_and_wait(http, plain, "hello operator", public_key=wallet)
        await create_session(http, archived, public_key=wallet)
        ok(await http.post(f"/api/sessions/{archived}/archive"))
        await create_session(http, keyed, alpha_cli_key, "alpha", public_key=wallet)
        await chat_and_wait(http, opaque, "an opaque one", public_key=wallet)

        everything = {s["id"] for s in listed(admin_env, "--wallet", wallet)}
        assert {plain, archived, keyed} <= everything
        assert len(everything) == 4
        assert [s["id"] for s in listed(admin_env, "--wallet", wallet, "--app", "alpha")] == [keyed]
        assert [s["id"] for s in listed(admin_env, "--wallet", wallet, "--archived")] == [archived]
        assert listed(admin_env, "--wallet", wallet, "--older-than", "1h") == []
        [legacy] = [s for s in listed(admin_env, "--wallet", wallet) if s["legacy_id"]]
        assert legacy["legacy_id"] == opaque

        shown = admin(admin_env, "sessions", "show", plain)
        assert shown.returncode == 0, shown.stderr
        assert "hello operator" in shown.stdout

        out = tmp_path / "export.json"
        exported = admin(admin_env, "sessions", "export", opaque, "--out", str(out))
        assert exported.returncode == 0, exported.stderr
        document = json.loads(out.read_text())
        assert document["format"] == "confab.session/2"
        assert document["session"]["legacy_id"] == opaque
        [primary] = document["threads"]
        assert [m["content"] for m in primary["messages"]] == [
            "an opaque one",
            "You said: an opaque one",
        ]
        # ... imported as a new session of another app, and readable as Markdown.
        imported = admin(admin_env, "sessions", "import", str(out), "--app", "alpha")
        assert imported.returncode == 0, imported.stderr
        copy_id = imported.stdout.split("session ")[1].split()[0]
        assert "in app alpha" in imported.stdout
        readable = tmp_path / "export.md"
        md = admin(
            admin_env, "sessions", "export", copy_id, "--format", "markdown", "--out", str(readable)
        )
        assert md.returncode == 0, md.stderr
        assert "**User**\n\nan opaque one\n" in readable.read_text()
        bad = admin(admin_env, "sessions", "import", str(readable), "--app", "alpha")
        assert bad.returncode != 0
        assert "file: is not JSON" in bad.stderr
        assert admin(admin_env, "sessions", "delete", copy_id).returncode == 0

        # by filter: a dry run first, which deletes nothing
        dry = admin(admin_env, "sessions", "delete", "--wallet", wallet, "--app", "default")
        assert dry.returncode == 0, dry.stderr
        assert "3 sessions match" in dry.stdout
        assert len(listed(admin_env, "--wallet", wallet)) == 4
        done = admin(
            admin_env, "sessions", "delete", "--wallet", wallet, "--app", "default", "--yes"
        )
        assert done.returncode == 0, done.stderr
        assert "deleted 3 sessions" in done.stdout
        # the serving replica knows at once (its cache was told through Redis)
        assert_error(await http.get(f"/api/sessions/{plain}", headers=headers(plain)), 404)
        assert [s["id"] for s in listed(admin_env, "--wallet", wallet)] == [keyed]

        # by id
        by_id = admin(admin_env, "sessions", "delete", keyed)
        assert by_id.returncode == 0, by_id.stderr
        assert listed(admin_env, "--wallet", wallet) == []


def test_bad_arguments_say_what_is_wrong(admin_env: dict[str, str]) -> None:
    for args, needle in (
        (("sessions", "list", "--older-than", "3 weeks"), "--older-than"),
        (("sessions", "list", "--app", "nope"), "unknown app 'nope'"),
        (("sessions", "list", "--wallet", "0x12"), "--wallet"),
        (("sessions", "delete"), "name sessions by id"),
        (("sessions", "show", "has space"), "id"),
        (("sessions", "show", new_id()), "no session"),
    ):
        result = admin(admin_env, *args)
        assert result.returncode != 0, (args, result.stdout)
        assert needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


async def test_stats_count_what_is_stored_and_who_serves(
    admin_server: ServerProcess, admin_env: dict[str, str]
) -> None:
    session_id = new_id()
    async with httpx.AsyncClient(base_url=admin_server.url, timeout=10) as http:
        await chat_and_wait(http, session_id, "count me")
        async with updates(http, session_id):
            async with asyncio.timeout(20):
                while True:
                    result = admin(admin_env, "stats", "--json")
                    assert result.returncode == 0, result.stderr
                    stats = json.loads(result.stdout)
                    mine = [r for r in stats["replicas"] if r["pid"] == admin_server.process.pid]
                    if mine and mine[0]["subscribers"] >= 1:
                        break
                    await asyncio.sleep(0.1)
    assert stats["sessions"]["default"] >= 1
    assert stats["messages"] >= 2
    assert stats["turns"]["done"] >= 1
    text = admin(admin_env, "stats")
    assert text.returncode == 0, text.stderr
    assert "replicas" in text.stdout
