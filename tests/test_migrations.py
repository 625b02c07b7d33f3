"""Shipped migrations carry a previous release's data forward."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from runtime.database import forget_compiled_queries, tortoise_config
from server import create_app
from settings import Settings, load_apps
from tests.conftest import new_id, started

STAMP = "2026-11-01 08:00:00.000000+00:00"


def _store_as_release_one(path: Path, session_id: str) -> None:
    """A session with a message and an unread system event, in the 0001 schema."""
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO apps (name, display_name, created_at) VALUES ('default', 'Default', ?)",
            (STAMP,),
        )
        db.execute(
            "INSERT INTO sessions (id, app_id, title_source, state, metadata, is_archived, "
            "is_processing, version, events_read_upto, created_at, updated_at, last_active_at) "
            "VALUES (?, 'default', 'default', '{}', '{}', 0, 0, 1, 0, ?, ?, ?)",
            (session_id, STAMP, STAMP, STAMP),
        )
        db.execute(
            "INSERT INTO threads (id, session_id, is_primary, next_seq, created_at, updated_at) "
            "VALUES (?, ?, 1, 2, ?, ?)",
            (session_id, session_id, STAMP, STAMP),
        )
        db.execute(
            "INSERT INTO messages (id, session_id, thread_id, seq, role, content, "
            "is_interrupted, created_at) VALUES (?, ?, ?, 1, 'user', 'from before', 0, ?)",
            (new_id(), session_id, session_id, STAMP),
        )
        db.execute(
            "INSERT INTO system_events (session_id, kind, payload, created_at) "
            """VALUES (?, 'notice', '{"message": "unread"}', ?)""",
            (session_id, STAMP),
        )


async def test_an_upgrade_keeps_messages_and_delivers_unread_system_events(
    tmp_path: Path, apps_file: Path
) -> None:
    path = tmp_path / "upgraded.sqlite3"
    settings = Settings(
        database_url=f"sqlite://{path}",
        auto_migrate=True,
        config_file=str(apps_file),
        apps=load_apps(apps_file),
    )
    forget_compiled_queries()
    try:
        await migrate(config=tortoise_config(settings), target="models.0001_initial")
    finally:
        await Tortoise.close_connections()
    session_id = new_id()
    _store_as_release_one(path, session_id)

    application = create_app(settings)  # migrates to the latest schema on startup
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            sent = {"X-Session-Id": session_id}
            first = (await http.get("/api/state", headers=sent)).json()
            second = (await http.get("/api/state", headers=sent)).json()
    assert [m["content"] for m in first["messages"]] == ["from before"]
    assert first["system_events"] == [{"SystemNotice": "unread"}]
    assert second["system_events"] == []  # read once, as before the upgrade
