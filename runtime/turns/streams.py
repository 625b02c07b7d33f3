"""Assistant messages being streamed right now, so a snapshot can show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID, uuid4

from runtime.events.envelope import utc_now


@dataclass
class StreamingMessage:
    session_id: UUID
    thread_id: UUID
    id: UUID = field(default_factory=uuid4)
    parts: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=utc_now)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class Streams:
    def __init__(self) -> None:
        self._by_session: dict[UUID, StreamingMessage] = {}

    def start(self, session_id: UUID, thread_id: UUID) -> StreamingMessage:
        message = StreamingMessage(session_id, thread_id)
        self._by_session[session_id] = message
        return message

    def get(self, session_id: UUID) -> StreamingMessage | None:
        return self._by_session.get(session_id)

    def end(self, message: StreamingMessage) -> None:
        if self._by_session.get(message.session_id) is message:
            del self._by_session[message.session_id]
