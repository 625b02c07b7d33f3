"""Request ids: taken from `X-Request-Id` or made, kept in a context variable so
every log line and span of the request carries it, and carried into the turn the
request queued (which runs in a background task).

A turn is stored (runtime/turns/queue.py) and may be claimed long after the
request that queued it ended; `TurnOrigins` remembers, in this process, which
request queued the turn of a user message (and, with tracing on, the span it was
queued under), bounded so that turns claimed elsewhere never leave entries behind.
A turn claimed by another replica gets an id of its own.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

HEADER = "x-request-id"
MAX_LENGTH = 128
# Letters, digits and a few separators: safe in a header, a log line and a label.
_VALID = re.compile(rf"[A-Za-z0-9._:+=@/-]{{1,{MAX_LENGTH}}}")

request_id: ContextVar[str | None] = ContextVar("confab_request_id", default=None)
app_name: ContextVar[str | None] = ContextVar("confab_app", default=None)
session_id: ContextVar[str | None] = ContextVar("confab_session_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(sent: bytes | str | None) -> str:
    """The client's `X-Request-Id` if it is short and made of safe characters,
    otherwise a new one (never an error: the request goes on either way)."""
    if sent is not None:
        text = sent.decode("latin-1") if isinstance(sent, bytes) else sent
        if _VALID.fullmatch(text):
            return text
    return new_request_id()


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a turn came from: the request's id and, with tracing on, its span."""

    request_id: str | None
    trace_context: Any = None


class TurnOrigins:
    """User message id -> the origin of its turn, for the turns of this process."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._origins: OrderedDict[UUID, Origin] = OrderedDict()

    def remember(self, message_id: UUID, trace_context: Any = None) -> None:
        rid = request_id.get()
        if rid is None and trace_context is None:
            return
        self._origins[message_id] = Origin(rid, trace_context)
        if len(self._origins) > self._limit:
            self._origins.popitem(last=False)

    def take(self, message_id: UUID) -> Origin | None:
        return self._origins.pop(message_id, None)


turn_origins = TurnOrigins()
