"""`server.py sessions list|show|export|import|delete`, `search reindex` and `stats`.

Filters: `--app` (repeatable), `--wallet`, `--older-than` (no activity for that
long: `30d`, `12h`, `45m`, `90s`), `--archived` / `--active`. Sessions are named by
their id as clients send it (a UUID or a legacy text id). Deleting by filter
needs `--yes`; without it the command only says what it would delete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from tortoise import Tortoise

from runtime.admin import Admin, SessionFilter, Stats
from runtime.core import Runtime
from runtime.database import apply_migrations, tortoise_config
from runtime.errors import InvalidInput
from runtime.events.envelope import utc_now
from runtime.exports import session_json
from runtime.records import SessionRecord
from runtime.session_ids import session_name
from runtime.validation import public_key_arg
from settings import Settings

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


async def run(settings: Settings, args: argparse.Namespace) -> int:
    async with _admin(settings) as admin:
        if args.command == "stats":
            _print_stats(await admin.stats(), args.json)
            return 0
        if args.command == "search":
            print(f"search index rebuilt: {await admin.reindex_search()} messages indexed again")
            return 0
        verb = args.sessions_command
        if verb == "list":
            async for record in admin.sessions(_filter(args, settings), args.limit):
                _print_session(record, args.json)
            return 0
        if verb == "show":
            _print_show(await admin.export(session_name("id", args.id).id))
            return 0
        if verb == "import":
            record = await admin.import_file(args.file, args.app)
            print(f"imported as session {record.id} in app {record.app}")
            return 0
        if verb == "export":
            chunks = await admin.export_stream(session_name("id", args.id).id, args.format)
            await _stream(chunks, args.out)
            return 0
        return await _delete(admin, args, settings)


async def _delete(admin: Admin, args: argparse.Namespace, settings: Settings) -> int:
    if args.ids:
        if _has_filters(args):
            raise InvalidInput("ids", "give session ids or filters, not both")
        for text in args.ids:
            record = await admin.session(session_name("id", text).id)
            await admin.delete(record)
            print(f"deleted {record.public_id}")
        return 0
    if not _has_filters(args):
        raise InvalidInput(
            "filters", "name sessions by id, or filter them (--app, --older-than...)"
        )
    matched = [record async for record in admin.sessions(_filter(args, settings), None)]
    if not args.yes:
        print(f"{len(matched)} sessions match; run again with --yes to delete them")
        return 0
    deleted = 0
    for record in matched:
        deleted += await admin.delete(record)
    print(f"deleted {deleted} sessions")
    return 0


@asynccontextmanager
async def _admin(settings: Settings) -> AsyncIterator[Admin]:
    if settings.migrate_on_startup:
        await apply_migrations(settings)
    await Tortoise.init(config=tortoise_config(settings))
    runtime = Runtime(settings)
    await runtime.events.start()
    try:
        yield Admin(runtime)
    finally:
        await runtime.events.stop()
        await runtime.sessions.shutdown()
        await runtime.limits.aclose()
        await runtime.leases.aclose()
        await Tortoise.close_connections()


def _filter(args: argparse.Namespace, settings: Settings) -> SessionFilter:
    unknown = [app for app in args.app if app not in settings.apps]
    if unknown:
        raise InvalidInput(
            "--app", f"unknown app {unknown[0]!r} (apps: {', '.join(settings.apps)})"
        )
    return SessionFilter(
        apps=tuple(args.app),
        public_key=None if args.wallet is None else public_key_arg("--wallet", args.wallet),
        active_before=None if args.older_than is None else utc_now() - _duration(args.older_than),
        archived=True if args.archived else False if args.active else None,
    )


def _has_filters(args: argparse.Namespace) -> bool:
    return bool(args.app or args.wallet or args.older_than or args.archived or args.active)


def _duration(text: str) -> timedelta:
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise InvalidInput("--older-than", f"{text!r} is not a duration like 30d, 12h, 45m, 90s")
    return timedelta(seconds=int(found[1]) * _UNITS[found[2]])


def _print_session(record: SessionRecord, as_json: bool) -> None:
    if as_json:
        print(json.dumps(session_json(record), ensure_ascii=False))
        return
    title = (record.title or "New chat")[:40]
    state = "archived" if record.is_archived else "active"
    print(
        f"{record.public_id:<38} {record.app:<12} {record.last_active_at:%Y-%m-%d %H:%M} "
        f"{state:<8} {record.public_key or '-':<42} {title}"
    )


def _print_show(document: dict[str, Any]) -> None:
    session = document["session"]
    for name in (
        "id",
        "legacy_id",
        "app",
        "title",
        "public_key",
        "model",
        "is_archived",
        "created_at",
        "last_active_at",
        "expires_at",
    ):
        print(f"{name:<15} {session[name]}")
    for thread in document["threads"]:
        kind = "primary" if thread["is_primary"] else "thread"
        print(f"{kind} {thread['id']}: {len(thread['messages'])} messages")
        for message in thread["messages"][-5:]:
            print(f"  {message['role']:<9} {message['content'][:100]!r}")
    print(f"system events: {len(document['system_events'])}")


async def _stream(chunks: AsyncIterator[str], out: str | None) -> None:
    """The export as it is read, a page at a time (a file is replaced only when whole)."""
    if out is None:
        async for chunk in chunks:
            sys.stdout.write(chunk)
        sys.stdout.write("\n")
        return
    partial = f"{out}.partial"
    with open(partial, "w", encoding="utf-8") as file:  # noqa: ASYNC230 - a CLI: nothing else waits
        async for chunk in chunks:
            file.write(chunk)
        file.write("\n")
    os.replace(partial, out)
    print(f"wrote {out}", file=sys.stderr)


def _print_stats(stats: Stats, as_json: bool) -> None:
    replicas = [
        {
            "id": r.id,
            "host": r.host,
            "pid": r.pid,
            "subscribers": r.subscribers,
            "cached_sessions": r.cached_sessions,
            "running_turns": r.running_turns,
            "seen_at": r.seen_at.isoformat(),
        }
        for r in stats.replicas
    ]
    if as_json:
        print(
            json.dumps(
                {
                    "sessions": stats.sessions_by_app,
                    "messages": stats.messages,
                    "turns": stats.turns_by_status,
                    "replicas": replicas,
                }
            )
        )
        return
    total = sum(stats.sessions_by_app.values())
    apps = ", ".join(f"{app} {n}" for app, n in sorted(stats.sessions_by_app.items()))
    print(f"sessions  {total} ({apps or 'none'})")
    print(f"messages  {stats.messages}")
    turns = ", ".join(f"{status} {n}" for status, n in sorted(stats.turns_by_status.items()))
    print(f"turns     {turns or 'none'}")
    print(f"replicas  {len(replicas)}")
    for r in replicas:
        print(
            f"  {r['id']:<48} subscribers {r['subscribers']:<6} cached {r['cached_sessions']:<6} "
            f"busy sessions {r['running_turns']}"
        )
