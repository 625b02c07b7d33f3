"""Exports as callers ask for them: the session checked against the caller first
(another app's is `NotFound`), then the document streamed, as JSON or Markdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

from runtime.apps import Caller
from runtime.conversations import Conversations
from runtime.errors import InvalidInput
from runtime.export_markdown import markdown_chunks
from runtime.exports import export_chunks
from runtime.store import SessionStore

FORMATS = ("json", "markdown")
# GraphQL answers an export whole, in memory: past this, REST streams it.
WHOLE_MAX_BYTES = 8 * 1024 * 1024


class SessionExports:
    def __init__(self, store: SessionStore, conversations: Conversations) -> None:
        self._store = store
        self._conversations = conversations

    async def open(self, caller: Caller, session_id: UUID, format: str) -> AsyncIterator[str]:
        """The document's chunks; every check is made before the first one."""
        if format not in FORMATS:
            raise InvalidInput(
                "format", f"must be one of {', '.join(FORMATS)}, got {format[:20]!r}"
            )
        record = await self._conversations.get_session(caller, session_id)
        write = export_chunks if format == "json" else markdown_chunks
        return write(self._store, record)

    async def whole(self, caller: Caller, session_id: UUID, format: str) -> str:
        parts: list[str] = []
        size = 0
        async for chunk in await self.open(caller, session_id, format):
            size += len(chunk)
            if size > WHOLE_MAX_BYTES:
                raise InvalidInput(
                    "id",
                    f"this session's export is over {WHOLE_MAX_BYTES // (1024 * 1024)} MiB: "
                    f"stream it with GET /api/sessions/{session_id}/export",
                )
            parts.append(chunk)
        return "".join(parts)
