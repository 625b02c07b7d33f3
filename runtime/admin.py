"""What operators do from the shell (`server.py sessions`, `server.py stats`):
find sessions by app, wallet, age and archive state; show, export and delete them;
count what is stored and who is serving.

It works on a runtime whose bus is started but which serves nothing: deletes go
through the same path as the API's (caches of running replicas are told through
Redis; live subscribers get `session_deleted`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.functions import Count

from models import Message, Session, Turn
from runtime.apps import Caller
from runtime.core import Runtime
from runtime.errors import InvalidInput, NotFound
from runtime.exports import export_session
from runtime.records import JSONObject, SessionRecord
from runtime.replicas import ReplicaInfo, live_replicas
from runtime.store import SessionQuery

PAGE = 200


IMPORT_FILE_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SessionFilter:
    apps: tuple[str, ...] = ()  # empty: every app
    public_key: str | None = None
    active_before: datetime | None = None
    archived: bool | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    sessions_by_app: dict[str, int]
    messages: int
    turns_by_status: dict[str, int]
    replicas: list[ReplicaInfo]


class Admin:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def sessions(
        self, where: SessionFilter, limit: int | None
    ) -> AsyncIterator[SessionRecord]:
        """Matching sessions, most recently active first; all of them without `limit`."""
        apps = where.apps or tuple(await self._runtime.store.app_names())
        after: tuple[bool, datetime, UUID] | None = None
        given = 0
        while limit is None or given < limit:
            page = await self._runtime.store.list_sessions(
                SessionQuery(
                    apps=apps,
                    public_key=where.public_key,
                    archived=where.archived,
                    active_before=where.active_before,
                    limit=PAGE if limit is None else min(PAGE, limit - given),
                    after=after,
                )
            )
            for record in page.items:
                yield record
            given += len(page.items)
            if not page.has_next or not page.items:
                return
            last = page.items[-1]
            after = (last.is_pinned, last.last_active_at, last.id)

    async def session(self, session_id: UUID) -> SessionRecord:
        record = await self._runtime.store.get_session(session_id)
        if record is None:
            raise NotFound(f"no session {session_id}")
        return record

    async def export(self, session_id: UUID) -> JSONObject:
        return await export_session(self._runtime.store, await self.session(session_id))

    async def export_stream(self, session_id: UUID, format: str) -> AsyncIterator[str]:
        """The export's chunks (constant memory), in the session's own app."""
        record = await self.session(session_id)
        return await self._runtime.exports.open(Caller(app=record.app), record.id, format)

    async def import_file(self, path: str, app: str) -> SessionRecord:
        """A document from a file (at most `IMPORT_FILE_MAX_BYTES`) as a new session."""
        if app not in self._runtime.settings.apps:
            raise InvalidInput("app", f"no app {app!r} is configured")
        try:
            with open(path, "rb") as file:  # noqa: ASYNC230 - operators' tool, nothing else waits
                raw = file.read(IMPORT_FILE_MAX_BYTES + 1)
        except OSError as exc:
            raise InvalidInput("file", f"cannot read {path}: {exc.strerror}") from None
        if len(raw) > IMPORT_FILE_MAX_BYTES:
            raise InvalidInput("file", f"is over {IMPORT_FILE_MAX_BYTES // 2**20} MiB")
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise InvalidInput("file", f"is not JSON: {exc}") from None
        return await self._runtime.imports.run(Caller(app=app), document)

    async def delete(self, record: SessionRecord) -> bool:
        """Delete as the API does, in the session's own app."""
        return await self._runtime.conversations.delete_session(Caller(app=record.app), record.id)

    async def reindex_search(self) -> int:
        """Every row in its app's current search language (the apps' rows first)."""
        await self._runtime.apps.sync_to_database()
        return await self._runtime.store.reindex_search()

    async def stats(self) -> Stats:
        by_app = (
            await Session.all().annotate(n=Count("id")).group_by("app_id").values("app_id", "n")
        )
        turns = await Turn.all().annotate(n=Count("id")).group_by("status").values("status", "n")
        return Stats(
            sessions_by_app={str(row["app_id"]): int(row["n"]) for row in by_app},
            messages=await Message.all().count(),
            turns_by_status={str(row["status"]): int(row["n"]) for row in turns},
            replicas=await live_replicas(self._runtime.settings.heartbeat_seconds),
        )
