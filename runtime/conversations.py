"""Conversations: the app-scoped operations on sessions, threads and messages
(threads in runtime/conversation_threads.py, system notices and messages in
runtime/conversation_notices.py, mixed in here).

GraphQL resolvers and REST handlers both call this service, so the two dialects
cannot drift. Every operation takes the `Caller`; a session of another app is
reported exactly like a missing one. Values are validated here (one message per
field); ids arrive parsed, because each transport names them differently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from runtime import access, validation
from runtime.announcer import Announcer
from runtime.apps import AppRegistry, Caller
from runtime.conversation_notices import SystemMessages
from runtime.conversation_threads import ThreadOperations
from runtime.errors import Conflict, NotFound
from runtime.events import RESYNC_REQUIRED, Event
from runtime.events.envelope import (
    MESSAGE_ADDED,
    SESSION_DELETED,
    SESSION_UPDATED,
    TITLE_CHANGED,
    utc_now,
)
from runtime.records import (
    JSONObject,
    MessageRecord,
    Page,
    SessionRecord,
    SummaryRecord,
    TitleSource,
    TurnUsage,
)
from runtime.sessions import SessionHost
from runtime.store import MessageWindow, NewMessage, SessionQuery, SessionStore
from settings import DEFAULT_APP


class Conversations(ThreadOperations, SystemMessages):
    def __init__(
        self, host: SessionHost, store: SessionStore, apps: AppRegistry, announcer: Announcer
    ) -> None:
        self._host = host
        self._store = store
        self._apps = apps
        self._announcer = announcer
        self._events = announcer.events

    # -- sessions ------------------------------------------------------------

    async def find_session(self, caller: Caller, session_id: UUID) -> SessionRecord | None:
        """The caller's live session, or None (missing, expired, or another app's).
        An empty keyless session a keyed caller names becomes its app's (`_claim`)."""
        return self.visible(caller, await self._claim(caller, await self._host.get(session_id)))

    async def stored_session(self, caller: Caller, session_id: UUID) -> SessionRecord | None:
        """The session as stored, whichever app's (or None), after the caller's claim."""
        return await self._claim(caller, await self._host.get(session_id))

    async def bearer(
        self, session_id: UUID, client: str | None, *, strict: bool
    ) -> tuple[Caller, SessionRecord | None]:
        """Who a caller without a key or an app acts as: the session id is its
        capability, so it acts in the session's app (a `default` session, or none
        yet: `default`). Strict keys refuse that for any other app's session."""
        record = await self._host.get(session_id)
        return access.bearer_caller(record, client, strict=strict), record

    async def _claim(self, caller: Caller, record: SessionRecord | None) -> SessionRecord | None:
        """A session created without a key and still empty (no message, no wallet)
        belongs to the first app whose key names it; a session with content never
        changes app. The move is a compare-and-set on the version, so a message
        stored meanwhile (which bumps it) keeps the session where it is."""
        if (
            record is None
            or record.app == caller.app
            or record.app != DEFAULT_APP
            or not caller.has_key
            or record.public_key is not None
            or access.expired(record, utc_now())
            or await self._store.has_messages(record.id)
        ):
            return record
        claimed = await self._host.update(
            record.id,
            {"app_id": caller.app, "expires_at": self._expiry(caller.app, utc_now())},
            expect={"app_id": DEFAULT_APP, "version": record.version},
        )
        if claimed is None:  # changed meanwhile: decide on what is stored now
            return await self._host.load(record.id)
        await self._publish(claimed, SESSION_UPDATED, {"changes": {"app": caller.app}})
        return claimed

    # The rules of who may see which session (runtime/access.py), for transports.
    visible = staticmethod(access.visible)
    authorized = staticmethod(access.authorized)
    addressed = staticmethod(access.addressed)

    async def get_session(self, caller: Caller, session_id: UUID) -> SessionRecord:
        record = await self.find_session(caller, session_id)
        if record is None:
            raise NotFound(f"session {session_id} not found")
        return record

    async def create_session(
        self,
        caller: Caller,
        session_id: UUID | None = None,
        *,
        public_key: str | None = None,
        title: str | None = None,
        metadata: object | None = None,
        user_state: object | None = None,
        legacy_id: str | None = None,
        client_id: str | None = None,
    ) -> tuple[SessionRecord, bool]:
        """Create the session, or return it unchanged if this app already has it.
        `legacy_id` is the text id a legacy client named it by (runtime/session_ids.py);
        `client_id` the legacy client it belongs to."""
        fields: dict[str, Any] = {"expires_at": self._expiry(caller.app, utc_now())}
        if legacy_id is not None:
            fields["legacy_id"] = validation.opaque_id_arg("sessionId", legacy_id)
        if client_id is not None:
            fields["client_id"] = validation.opaque_id_arg("client_id", client_id)
        if public_key is not None:
            fields["public_key"] = validation.public_key_arg("publicKey", public_key)
        if title is not None:
            fields["title"] = validation.title_arg("title", title)
            fields["title_source"] = TitleSource.USER.value
        if metadata is not None:
            fields["metadata"] = validation.json_object_arg("metadata", metadata)
        if user_state is not None:
            fields["user_state"] = validation.json_object_arg("userState", user_state)
        record, created = await self._host.create(session_id or uuid4(), caller.app, fields)
        if not created:
            record = await self._claim(caller, record) or record
        if record.app != caller.app:
            raise Conflict(f"session id {record.id} is already in use")
        if not created and access.expired(record, utc_now()):
            # An expired session the janitor has not swept yet: its id is free again.
            await self._host.delete(record.id)
            return await self.create_session(
                caller,
                record.id,
                public_key=public_key,
                title=title,
                metadata=metadata,
                user_state=user_state,
                legacy_id=legacy_id,
                client_id=client_id,
            )
        return record, created

    async def ensure_session(
        self,
        caller: Caller,
        session_id: UUID,
        *,
        public_key: str | None = None,
        user_state: object | None = None,
        legacy_id: str | None = None,
        client_id: str | None = None,
    ) -> tuple[SessionRecord, bool]:
        """The caller's session, created on first use (chat, model selection,
        system messages), with the wallet and user state given (an existing session
        keeps its own) and associated with `client_id` (the latest client wins).
        Unlike `create_session`, another app's session is simply not found."""
        existing = await self.stored_session(caller, session_id)
        if existing is not None and existing.app != caller.app:
            raise NotFound(f"session {session_id} not found")
        record = self.visible(caller, existing)
        if record is None:
            return await self.create_session(
                caller,
                session_id,
                public_key=public_key,
                user_state=user_state,
                legacy_id=legacy_id,
                client_id=client_id,
            )
        if client_id is not None and client_id != record.client_id:
            record = await self.associate_client(caller, session_id, client_id)
        return record, False

    async def associate_client(
        self, caller: Caller, session_id: UUID, client_id: str
    ) -> SessionRecord:
        """The session's turns use this legacy client's secrets and provider keys."""
        clean = validation.opaque_id_arg("client_id", client_id)
        return await self._update(caller, session_id, {"client_id": clean})

    async def rename_session(self, caller: Caller, session_id: UUID, title: str) -> SessionRecord:
        clean = validation.title_arg("title", title)
        record = await self._update(
            caller, session_id, {"title": clean, "title_source": TitleSource.USER.value}
        )
        await self._publish(
            record, TITLE_CHANGED, {"new_title": clean, "source": TitleSource.USER.value}
        )
        return record

    async def set_archived(self, caller: Caller, session_id: UUID, archived: bool) -> SessionRecord:
        return await self._update_and_announce(caller, session_id, {"is_archived": archived})

    async def bind_wallet(
        self, caller: Caller, session_id: UUID, public_key: str | None
    ) -> SessionRecord:
        key = None if public_key is None else validation.public_key_arg("publicKey", public_key)
        return await self._update_and_announce(caller, session_id, {"public_key": key})

    async def update_user_state(
        self, caller: Caller, session_id: UUID, user_state: object | None
    ) -> SessionRecord:
        clean = None if user_state is None else validation.json_object_arg("userState", user_state)
        return await self._update_and_announce(caller, session_id, {"user_state": clean})

    async def update_state(self, session: SessionRecord, state: object) -> SessionRecord:
        """The agent's state, written by a tool or backend during a turn (in the
        session's own app); at most `JSON_OBJECT_MAX_BYTES`."""
        clean = validation.json_object_arg("state", state)
        own = Caller(app=session.app)
        return await self._update_and_announce(own, session.id, {"state": clean})

    async def context_summary(self, caller: Caller, record: SessionRecord) -> SummaryRecord | None:
        """The running summary of the session's primary thread (its id is the session's)."""
        access.authorized(caller, record)
        return await self._store.latest_summary(record.id)

    async def turn_usage(self, caller: Caller, record: SessionRecord, last: int) -> list[TurnUsage]:
        access.authorized(caller, record)
        return await self._store.turn_usage(record.id, validation.page_size_arg("last", last))

    async def update_metadata(
        self, caller: Caller, session_id: UUID, metadata: object, *, merge: bool = False
    ) -> SessionRecord:
        changes = validation.json_object_arg("metadata", metadata)
        async with self._host.lock(session_id):
            current = await self.get_session(caller, session_id)
            combined = {**current.metadata, **changes} if merge else changes
            clean = validation.json_object_arg("metadata", combined)
            return await self._update_and_announce(caller, session_id, {"metadata": clean})

    async def set_pinned(self, caller: Caller, session_id: UUID, pinned: bool) -> SessionRecord:
        """Pinned: never expires by TTL and is listed first; unpinned: its TTL restarts."""
        return await self._update_and_announce(caller, session_id, {"is_pinned": pinned})

    async def delete_session(self, caller: Caller, session_id: UUID) -> bool:
        """Delete the caller's session; False if there was none to delete (another
        app's raises `NotFound`, the transport's answer for it)."""
        stored = await self.stored_session(caller, session_id)
        if stored is not None and stored.app != caller.app:
            raise NotFound(f"session {session_id} not found")
        if stored is None or not await self._host.delete(session_id):
            return False
        await self._publish(stored, SESSION_DELETED, {})
        # Live subscribers have been told; a later resume finds no log and resyncs.
        await self._events.forget(session_id)
        return True

    async def list_sessions(
        self,
        caller: Caller,
        *,
        public_key: str | None = None,
        archived: bool | None = None,
        limit: int = 50,
        after: tuple[bool, datetime, UUID] | None = None,
        apps: tuple[str, ...] | None = None,
    ) -> Page[SessionRecord]:
        """The caller's app's sessions; `apps` widens a keyless listing by wallet to
        the apps that chose it (`AppRegistry.keyless_listing_apps`)."""
        key = None if public_key is None else validation.public_key_arg("publicKey", public_key)
        validation.page_size_arg("first", limit)
        page = await self._host.list_sessions(
            SessionQuery(
                apps=apps or (caller.app,),
                public_key=key,
                archived=archived,
                limit=limit,
                after=after,
            )
        )
        now = utc_now()
        return Page(
            items=[record for record in page.items if not access.expired(record, now)],
            has_next=page.has_next,
            has_previous=page.has_previous,
        )

    # -- messages ----------------------------------------------------------

    async def append(
        self,
        session: SessionRecord,
        message: NewMessage,
        *,
        mark_processing: bool = False,
        queue_turn: bool = False,
    ) -> tuple[MessageRecord, SessionRecord]:
        """Store a message in `session` (authorized already: the runtime's own writes,
        a turn's or a caller's checked one), push the session's expiry back, cache it
        as it is now and announce the message (`message_added`). The options are the
        store's (`SessionStore.append_message`)."""
        stored, updated = await self._store.append_message(
            message,
            mark_processing=mark_processing,
            expires_at=None if session.is_pinned else self._expiry(session.app, utc_now()),
            queue_turn=queue_turn,
        )
        await self._host.refresh(updated, appended=stored)
        await self._publish(updated, MESSAGE_ADDED, {"message": stored.as_json()})
        return stored, updated

    # -- live events -----------------------------------------------------------------

    @asynccontextmanager
    async def watching(
        self,
        caller: Caller,
        session_id: UUID,
        *,
        after: int | None = None,
        types: frozenset[str] | None = None,
    ) -> AsyncIterator[AsyncIterator[Event]]:
        """Subscribe (on entry) to the session's events for this caller: from `after`
        if given, then live.

        The session may not exist yet (the first chat creates it); one that belongs
        to another app is not found, and another app's events are never delivered,
        except to a bearer caller (known by the session id alone), who follows the
        session into whichever app creates or claims it.
        `resync_required` always passes the type filter: it is never optional.
        """
        self.addressed(caller, await self.stored_session(caller, session_id), follow=True)
        async with self._events.subscribe(session_id, after) as subscription:
            yield _visible(subscription, None if caller.bearer else caller.app, types)

    async def primary_messages(
        self, caller: Caller, session: SessionRecord, window: MessageWindow
    ) -> Page[MessageRecord]:
        """Messages of the primary thread (its id is the session's) of a session the
        transport already holds: checked against the caller, not looked up again."""
        self.authorized(caller, session)
        if window.from_end and window.after is None and window.before is None:
            return await self._host.recent_messages(session, window.limit)
        return await self._store.list_messages(session.id, window)

    # -- versions, for results kept until a session changes (schema/session_reads.py)

    def cached_version(self, session_id: UUID) -> int | None:
        """The version of this process's cached copy, without a coherence check."""
        return self._host.cached_version(session_id)

    def cached_exactly(self, session_id: UUID, version: int, window: int) -> bool:
        """Whether the cached copy is at `version` with its last `window` messages."""
        return self._host.cached_version(session_id) == version and (
            window == 0 or self._host.has_exact_tail(session_id, version, window)
        )

    async def unchanged_since(self, session_id: UUID, version: int) -> bool:
        """Whether the session, loaded as any read loads it (the coherence check
        included), is still at `version` and has not expired: then whatever a caller
        was shown of it at that version is what it would be shown now."""
        record = await self._host.get(session_id)
        return (
            record is not None
            and record.version == version
            and not access.expired(record, utc_now())
        )

    # -- internals -----------------------------------------------------------

    async def _update(
        self, caller: Caller, session_id: UUID, fields: Mapping[str, Any]
    ) -> SessionRecord:
        current = await self.get_session(caller, session_id)
        changes = {**fields, "last_active_at": utc_now()}
        if fields.get("is_pinned", current.is_pinned):
            changes["expires_at"] = None  # pinned: no TTL
        else:  # an unpinned one's TTL starts again from now
            expiry = self._expiry(caller.app, changes["last_active_at"])
            if expiry is not None:
                changes["expires_at"] = expiry
        record = await self._host.update(session_id, changes)
        if record is None:
            raise NotFound(f"session {session_id} not found")
        return record

    async def _update_and_announce(
        self, caller: Caller, session_id: UUID, fields: Mapping[str, Any]
    ) -> SessionRecord:
        record = await self._update(caller, session_id, fields)
        await self._publish(record, SESSION_UPDATED, {"changes": dict(fields)})
        return record

    async def _publish(self, record: SessionRecord, event_type: str, data: JSONObject) -> None:
        await self._announcer.publish(record, event_type, data)

    def _expiry(self, app: str, now: datetime) -> datetime | None:
        return self._apps.expiry(app, now)


async def _visible(
    events: AsyncIterator[Event], app: str | None, types: frozenset[str] | None
) -> AsyncIterator[Event]:
    """The events of `app` (None: of whichever app the session belongs to)."""
    async for event in events:
        wanted = (app is None or event.app == app) and (types is None or event.type in types)
        if wanted or event.type == RESYNC_REQUIRED:
            yield event
