"""Query root: sessions, threads, messages, apps and models."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from runtime.errors import NotFound
from runtime.records import Role as RoleRecord
from runtime.search import SearchFilters, parse_search_cursor
from runtime.validation import int_id_arg, uuid_arg
from schema.context import Context
from schema.cursors import parse_session_cursor
from schema.feedback_types import Feedback
from schema.memory_types import Memory
from schema.pagination import message_window
from schema.search_types import SearchResults
from schema.types import (
    AppInfo,
    MessageConnection,
    MessageSiblings,
    Role,
    Session,
    SessionConnection,
    Thread,
)

Info = strawberry.Info[Context, None]


@strawberry.enum(description="How a session is exported.")
class ExportFormat(Enum):
    JSON = "json"
    MARKDOWN = "markdown"


@strawberry.type
class Query:
    @strawberry.field(description="A session of the caller's app, or null.")
    async def session(self, info: Info, id: strawberry.ID) -> Session | None:
        context = info.context
        record = await context.conversations.find_session(context.caller, uuid_arg("id", id))
        return None if record is None else Session.from_record(record)

    @strawberry.field(description="The caller's sessions, most recently active first.")
    async def sessions(
        self,
        info: Info,
        public_key: Annotated[
            str | None, strawberry.argument(description="Only sessions bound to this wallet.")
        ] = None,
        archived: Annotated[
            bool | None, strawberry.argument(description="Only (un)archived; null for both.")
        ] = None,
        first: int = 50,
        after: str | None = None,
    ) -> SessionConnection:
        context = info.context
        page = await context.conversations.list_sessions(
            context.caller,
            public_key=public_key,
            archived=archived,
            limit=first,
            after=None if after is None else parse_session_cursor("after", after),
        )
        return SessionConnection.from_page(page)

    @strawberry.field(description="A thread of one of the caller's sessions, or null.")
    async def thread(self, info: Info, id: strawberry.ID) -> Thread | None:
        context = info.context
        thread_id = uuid_arg("id", id)
        try:
            record = await context.conversations.get_thread(context.caller, thread_id)
        except NotFound:
            return None
        return Thread.from_record(record)

    @strawberry.field(description="A thread's messages, oldest first, cursor-paginated.")
    async def messages(
        self,
        info: Info,
        thread_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MessageConnection:
        context = info.context
        window = message_window(first, after, last, before)
        page = await context.conversations.list_messages(
            context.caller, uuid_arg("threadId", thread_id), window
        )
        return MessageConnection.from_page(page)

    @strawberry.field(
        description="A wallet's memories in the caller's app, newest first (at most 200): "
        "personal data the user may read and forget (docs/memory.md)."
    )
    async def wallet_memory(self, info: Info, public_key: str) -> list[Memory]:
        context = info.context
        found = await context.runtime.memories.list(context.caller, public_key)
        return [Memory.from_record(record) for record in found]

    @strawberry.field(
        description="The caller's app's ratings, newest first (for evaluation); page with "
        "`before`: the last id of the previous page."
    )
    async def feedback(
        self, info: Info, first: int = 50, before: strawberry.ID | None = None
    ) -> list[Feedback]:
        context = info.context
        below = None if before is None else int_id_arg("before", before)
        found = await context.runtime.feedback.of_app(context.caller, first, below)
        return [Feedback.from_record(record) for record in found]

    @strawberry.field(
        description="A session as one document: JSON (`confab.session/2`, "
        "docs/export-format.md) or Markdown. Up to 8 MiB here; "
        "GET /api/sessions/{id}/export streams any size."
    )
    async def export_session(
        self, info: Info, id: strawberry.ID, format: ExportFormat = ExportFormat.JSON
    ) -> str:
        context = info.context
        return await context.runtime.exports.whole(context.caller, uuid_arg("id", id), format.value)

    @strawberry.field(
        description="Full-text search over the caller's sessions: message text, tool names "
        "and titles, best first (docs/search.md). Query syntax as web search: words, "
        '"a phrase", `or`, `-word`.'
    )
    async def search(
        self,
        info: Info,
        query: Annotated[str, strawberry.argument(description="At most 256 characters.")],
        first: Annotated[int, strawberry.argument(description="1 to 50.")] = 20,
        after: str | None = None,
        public_key: Annotated[
            str | None, strawberry.argument(description="Only sessions bound to this wallet.")
        ] = None,
        thread_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only this thread's messages and title."),
        ] = None,
        role: Annotated[
            Role | None, strawberry.argument(description="Only messages of this role.")
        ] = None,
        archived: Annotated[
            bool | None, strawberry.argument(description="Only (un)archived; null for both.")
        ] = None,
        since: Annotated[
            datetime | None, strawberry.argument(description="Created at or after.")
        ] = None,
        until: Annotated[
            datetime | None, strawberry.argument(description="Created before.")
        ] = None,
        all_versions: Annotated[
            bool,
            strawberry.argument(
                description="Also messages off their thread's active path (docs/branches.md)."
            ),
        ] = False,
    ) -> SearchResults:
        context = info.context
        filters = SearchFilters(
            public_key=public_key,
            thread_id=None if thread_id is None else uuid_arg("threadId", thread_id),
            role=None if role is None else RoleRecord(role.value),
            archived=archived,
            since=since,
            until=until,
            all_versions=all_versions,
        )
        found = await context.runtime.search.search(
            context.caller,
            query,
            filters,
            first=first,
            after=None if after is None else parse_search_cursor("after", after),
        )
        return SearchResults.from_record(found, after)

    @strawberry.field(
        description="A message's versions (edits of it, regenerated answers), itself "
        "included, oldest first; `switchBranch` to one shows its path (docs/branches.md)."
    )
    async def message_versions(self, info: Info, id: strawberry.ID) -> MessageSiblings:
        context = info.context
        message_id = uuid_arg("id", id)
        branches = context.runtime.branches
        message, _ = await branches.message(context.caller, message_id)
        ids = [strawberry.ID(str(v)) for v in await branches.versions(message)]
        return MessageSiblings(
            count=len(ids), index=ids.index(strawberry.ID(str(message_id))), ids=ids
        )

    @strawberry.field(description="The apps this caller may use.")
    def apps(self, info: Info) -> list[AppInfo]:
        context = info.context
        caller = context.caller
        registry = context.runtime.apps
        return [
            AppInfo(name=c.name, display_name=c.display_name, models=list(c.model.models))
            for c in (registry.get(name) for name in registry.names() if caller.may_use(name))
        ]

    @strawberry.field(description="The models a session of the caller's app may select.")
    def models(self, info: Info) -> list[str]:
        context = info.context
        return list(context.runtime.apps.get(context.caller.app).model.models)
