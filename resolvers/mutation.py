"""Mutation root: session, thread, wallet and state changes."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from runtime.errors import NotFound
from runtime.validation import uuid_arg
from schema.context import Context
from schema.events import SystemEvent
from schema.feedback_types import Feedback, Thumbs
from schema.types import DeletePayload, Message, Session, Thread

Info = strawberry.Info[Context, None]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Create a session (the client may choose its UUID); idempotent per id."
    )
    async def create_session(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        public_key: str | None = None,
        title: str | None = None,
        metadata: JSON | None = None,
    ) -> Session:
        context = info.context
        record, _ = await context.conversations.create_session(
            context.caller,
            None if id is None else uuid_arg("id", id),
            public_key=public_key,
            title=title,
            metadata=metadata,
        )
        return Session.from_record(record)

    @strawberry.mutation(description="Set a user title; automatic titling never overrides it.")
    async def rename_session(self, info: Info, id: strawberry.ID, title: str) -> Session:
        context = info.context
        record = await context.conversations.rename_session(
            context.caller, uuid_arg("id", id), title
        )
        return Session.from_record(record)

    @strawberry.mutation
    async def archive_session(self, info: Info, id: strawberry.ID) -> Session:
        context = info.context
        record = await context.conversations.set_archived(context.caller, uuid_arg("id", id), True)
        return Session.from_record(record)

    @strawberry.mutation
    async def unarchive_session(self, info: Info, id: strawberry.ID) -> Session:
        context = info.context
        record = await context.conversations.set_archived(context.caller, uuid_arg("id", id), False)
        return Session.from_record(record)

    @strawberry.mutation(
        description="Pin a session: it never expires by TTL and is listed before the others."
    )
    async def pin_session(self, info: Info, id: strawberry.ID) -> Session:
        context = info.context
        record = await context.conversations.set_pinned(context.caller, uuid_arg("id", id), True)
        return Session.from_record(record)

    @strawberry.mutation(description="Unpin a session: its TTL starts again from now.")
    async def unpin_session(self, info: Info, id: strawberry.ID) -> Session:
        context = info.context
        record = await context.conversations.set_pinned(context.caller, uuid_arg("id", id), False)
        return Session.from_record(record)

    @strawberry.mutation(description="Delete a session with its threads and messages.")
    async def delete_session(self, info: Info, id: strawberry.ID) -> DeletePayload:
        context = info.context
        session_id = uuid_arg("id", id)
        if not await context.conversations.delete_session(context.caller, session_id):
            raise NotFound(f"session {session_id} not found")
        return DeletePayload(id=strawberry.ID(str(session_id)))

    @strawberry.mutation(
        description="Rate an assistant message: exactly one of thumbs or stars (1-5), and "
        "an optional comment; a client's second rating of a message replaces its first."
    )
    async def rate_message(
        self,
        info: Info,
        message_id: strawberry.ID,
        thumbs: Thumbs | None = None,
        stars: int | None = None,
        comment: str | None = None,
        client_id: str | None = None,
    ) -> Feedback:
        context = info.context
        record = await context.runtime.feedback.rate(
            context.caller,
            uuid_arg("messageId", message_id),
            thumbs=None if thumbs is None else thumbs.value,
            stars=stars,
            comment=comment,
            client_id=client_id,
        )
        return Feedback.from_record(record)

    @strawberry.mutation(
        description="Import an exported session (`exportSession`'s JSON, parsed) as a new "
        "session of the caller's app; checked whole first, nothing written if it is bad."
    )
    async def import_session(self, info: Info, document: JSON) -> Session:
        context = info.context
        record = await context.runtime.imports.run(context.caller, document)
        return Session.from_record(record)

    @strawberry.mutation(description="Forget one memory of the caller's app; true once gone.")
    async def forget_memory(self, info: Info, id: strawberry.ID) -> bool:
        context = info.context
        await context.runtime.memories.forget(context.caller, uuid_arg("id", id))
        return True

    @strawberry.mutation(
        description="Forget every memory of a wallet in the caller's app; how many went."
    )
    async def forget_wallet(self, info: Info, public_key: str) -> int:
        context = info.context
        return await context.runtime.memories.forget_wallet(context.caller, public_key)

    @strawberry.mutation(description="Add a thread to a session.")
    async def create_thread(
        self,
        info: Info,
        session_id: strawberry.ID,
        id: strawberry.ID | None = None,
        title: str | None = None,
    ) -> Thread:
        context = info.context
        record = await context.conversations.create_thread(
            context.caller,
            uuid_arg("sessionId", session_id),
            None if id is None else uuid_arg("id", id),
            title,
        )
        return Thread.from_record(record)

    @strawberry.mutation
    async def rename_thread(self, info: Info, id: strawberry.ID, title: str) -> Thread:
        context = info.context
        record = await context.conversations.rename_thread(
            context.caller, uuid_arg("id", id), title
        )
        return Thread.from_record(record)

    @strawberry.mutation(
        description="Delete a thread; the primary thread goes only with its session."
    )
    async def delete_thread(self, info: Info, id: strawberry.ID) -> DeletePayload:
        context = info.context
        thread_id = uuid_arg("id", id)
        await context.conversations.delete_thread(context.caller, thread_id)
        return DeletePayload(id=strawberry.ID(str(thread_id)))

    @strawberry.mutation(description="Bind the session to an EVM wallet address; null unbinds.")
    async def bind_wallet(
        self, info: Info, session_id: strawberry.ID, public_key: str | None
    ) -> Session:
        context = info.context
        record = await context.conversations.bind_wallet(
            context.caller, uuid_arg("sessionId", session_id), public_key
        )
        return Session.from_record(record)

    @strawberry.mutation(description="Replace the client's user state (wallet connection, chain).")
    async def update_user_state(
        self, info: Info, session_id: strawberry.ID, user_state: JSON | None
    ) -> Session:
        context = info.context
        record = await context.conversations.update_user_state(
            context.caller, uuid_arg("sessionId", session_id), user_state
        )
        return Session.from_record(record)

    @strawberry.mutation(
        description="Send a user message: stored at once, answered in the background. "
        "Creates the session if needed. Returns the snapshot (isProcessing: true)."
    )
    async def send_message(
        self,
        info: Info,
        session_id: strawberry.ID,
        content: str,
        thread_id: strawberry.ID | None = None,
        user_state: JSON | None = None,
        public_key: str | None = None,
    ) -> Session:
        context = info.context
        record = await context.runtime.turns.send_message(
            context.caller,
            uuid_arg("sessionId", session_id),
            content,
            thread_id=None if thread_id is None else uuid_arg("threadId", thread_id),
            user_state=user_state,
            public_key=public_key,
        )
        return Session.from_record(record)

    @strawberry.mutation(
        description="A new version of a user message (a sibling: the original is kept), now "
        "on the active path; the assistant answers it. CONFLICT while the session is "
        "answering. Announced as `message_edited` (docs/branches.md)."
    )
    async def edit_message(self, info: Info, id: strawberry.ID, content: str) -> Message:
        context = info.context
        record = await context.runtime.turns.edit_message(
            context.caller, uuid_arg("id", id), content
        )
        return Message.from_record(record)

    @strawberry.mutation(
        description="A new answer to the question an assistant message answers, as a new "
        "version of that answer (which is kept); with `model`, that model of the app is "
        "selected first. CONFLICT while the session is answering."
    )
    async def regenerate(
        self, info: Info, message_id: strawberry.ID, model: str | None = None
    ) -> Session:
        context = info.context
        record = await context.runtime.turns.regenerate(
            context.caller, uuid_arg("messageId", message_id), model
        )
        return Session.from_record(record)

    @strawberry.mutation(
        description="Make the path through this message active (down the versions last "
        "chosen below it); its session, whose messages now follow that path. Announced as "
        "`branch_switched`."
    )
    async def switch_branch(self, info: Info, message_id: strawberry.ID) -> Session:
        context = info.context
        record = await context.runtime.turns.switch_branch(
            context.caller, uuid_arg("messageId", message_id)
        )
        return Session.from_record(record)

    @strawberry.mutation(
        description="Stop the running turn (its partial text is kept) and drop queued ones."
    )
    async def interrupt(self, info: Info, session_id: strawberry.ID) -> Session:
        context = info.context
        record = await context.runtime.turns.interrupt(
            context.caller, uuid_arg("sessionId", session_id)
        )
        return Session.from_record(record)

    @strawberry.mutation(description="Choose one of the app's models for this session.")
    async def select_model(self, info: Info, session_id: strawberry.ID, model: str) -> Session:
        context = info.context
        record = await context.runtime.turns.select_model(
            context.caller, uuid_arg("sessionId", session_id), model
        )
        return Session.from_record(record)

    @strawberry.mutation(description="Store a system notice and publish it (system_notice).")
    async def post_system_notice(
        self, info: Info, session_id: strawberry.ID, message: str
    ) -> SystemEvent:
        context = info.context
        record = await context.conversations.post_system_notice(
            context.caller, uuid_arg("sessionId", session_id), message
        )
        return SystemEvent.from_record(record)

    @strawberry.mutation(description="Replace the client metadata, or merge keys into it.")
    async def update_metadata(
        self, info: Info, session_id: strawberry.ID, metadata: JSON, merge: bool = False
    ) -> Session:
        context = info.context
        record = await context.conversations.update_metadata(
            context.caller, uuid_arg("sessionId", session_id), metadata, merge=merge
        )
        return Session.from_record(record)
