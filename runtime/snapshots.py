"""Session snapshots: what a polling client sees at once (recent messages, the
message being streamed, new system events, the processing flag).

Legacy semantics: a snapshot carries the system events added since the previous
snapshot of that session, so reading one advances a per-session cursor. The full
history stays available (`Conversations.list_system_events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from runtime import access
from runtime.apps import Caller
from runtime.records import MessageRecord, SessionRecord, SystemEventRecord
from runtime.sessions import SessionHost
from runtime.store import SessionStore
from runtime.turns.streams import StreamingMessage, Streams


@dataclass(frozen=True, slots=True)
class Snapshot:
    session: SessionRecord
    messages: list[MessageRecord]
    new_events: list[SystemEventRecord]
    streaming: StreamingMessage | None


class Snapshots:
    def __init__(
        self, host: SessionHost, store: SessionStore, streams: Streams, history_limit: int
    ) -> None:
        self._host = host
        self._store = store
        self._streams = streams
        self._history_limit = history_limit

    @property
    def window(self) -> int:
        """How many recent messages a snapshot shows."""
        return self._history_limit

    async def read(
        self, caller: Caller, session: SessionRecord, *, consume_events: bool = True
    ) -> Snapshot:
        """The snapshot of a session the transport holds, checked against the caller."""
        access.authorized(caller, session)
        messages = await self._host.recent_messages(session, self._history_limit)
        events: list[SystemEventRecord] = []
        if session.last_event_id > session.events_read_upto:
            events = await self._store.list_system_events(session.id, session.events_read_upto)
        if events and consume_events:
            advanced = await self._advance(session.id, session.events_read_upto, events[-1].id)
            if advanced is None:
                events = []  # a concurrent snapshot took them
            else:
                session = advanced
        return Snapshot(session, messages.items, events, self._streams.get(session.id))

    async def _advance(self, session_id: UUID, seen: int, upto: int) -> SessionRecord | None:
        # Compare-and-set: two pollers never both get the same events.
        return await self._host.update(
            session_id, {"events_read_upto": upto}, expect={"events_read_upto": seen}
        )
