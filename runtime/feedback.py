"""Feedback on assistant messages: a rating (thumbs up or down, or 1 to 5 stars) and
an optional comment, one per message per client, changeable.

The client is whoever the frontend says rates (`clientId`: a user id, say); by
default the session's wallet, or "anonymous" for an unbound session. Each rating
is stored (replacing that client's earlier one), announced to the session's live
UIs as `feedback_changed` so other tabs update, and counted in the metrics.
Listed per session (`Session.feedback`) and per app (`feedback`, for evaluation),
and exported with the session. Only messages of the caller's app can be rated;
another app's is reported exactly like a missing one.
"""

from __future__ import annotations

import re
from uuid import UUID

from runtime.announcer import Announcer
from runtime.apps import Caller
from runtime.conversations import Conversations
from runtime.errors import InvalidInput, NotFound
from runtime.events.envelope import FEEDBACK_CHANGED
from runtime.records import FeedbackRecord, Role, SessionRecord
from runtime.store.protocol import SessionStore
from runtime.telemetry.metrics import Metrics
from runtime.validation import page_size_arg

COMMENT_MAX = 2_000
THUMBS = ("up", "down")
_CLIENT_ID = re.compile(r"[\w.:@+-]{1,128}")


class FeedbackService:
    def __init__(
        self,
        store: SessionStore,
        conversations: Conversations,
        announcer: Announcer,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._announcer = announcer
        self._metrics = metrics

    async def rate(
        self,
        caller: Caller,
        message_id: UUID,
        *,
        thumbs: str | None = None,
        stars: int | None = None,
        comment: str | None = None,
        client_id: str | None = None,
    ) -> FeedbackRecord:
        """Every argument is checked before anything is read or written."""
        rating = _rating(thumbs, stars)
        text = _comment(comment)
        if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
            raise InvalidInput("clientId", "must be 1-128 letters, digits or . : @ + - _")
        message = await self._store.get_message(message_id)
        if message is None:
            raise NotFound(f"message {message_id} not found")
        session = await self._conversations.get_session(caller, message.session_id)
        if message.role is not Role.ASSISTANT:
            raise InvalidInput("messageId", "only the assistant's messages can be rated")
        rater = client_id or session.public_key or "anonymous"
        record = await self._store.rate(session.app, session.id, message_id, rater, rating, text)
        kind, value = ("thumbs", rating[0]) if rating[0] else ("stars", str(rating[1]))
        self._metrics.feedback.labels(kind, value).inc()
        await self._announcer.publish(session, FEEDBACK_CHANGED, {"feedback": record.as_json()})
        return record

    async def of_session(
        self, caller: Caller, record: SessionRecord, limit: int
    ) -> list[FeedbackRecord]:
        self._conversations.authorized(caller, record)
        return await self._store.session_feedback(record.id, page_size_arg("first", limit))

    async def of_app(self, caller: Caller, limit: int, before: int | None) -> list[FeedbackRecord]:
        return await self._store.app_feedback(caller.app, page_size_arg("first", limit), before)


def _rating(thumbs: str | None, stars: int | None) -> tuple[str | None, int | None]:
    if (thumbs is None) == (stars is None):
        raise InvalidInput("thumbs", "give exactly one of thumbs (UP or DOWN) or stars (1-5)")
    if thumbs is not None and thumbs not in THUMBS:
        raise InvalidInput("thumbs", "must be up or down")
    if stars is not None and not 1 <= stars <= 5:
        raise InvalidInput("stars", f"must be 1 to 5, got {stars}")
    return thumbs, stars


def _comment(comment: str | None) -> str:
    text = (comment or "").strip()
    if len(text) > COMMENT_MAX:
        raise InvalidInput("comment", f"must be at most {COMMENT_MAX} characters")
    if "\x00" in text:
        raise InvalidInput("comment", "must not contain NUL characters")
    return text
