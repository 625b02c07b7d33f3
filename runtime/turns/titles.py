"""Titles generated after the first exchange; a user-set title always wins."""

from __future__ import annotations

import logging
from uuid import UUID

from runtime.agents.protocol import ModelError
from runtime.agents.registry import Agents
from runtime.announcer import Announcer
from runtime.events.envelope import TITLE_CHANGED
from runtime.records import Role, TitleSource
from runtime.sessions import SessionHost
from runtime.store import MessageWindow, SessionStore
from runtime.validation import TITLE_MAX

logger = logging.getLogger(__name__)


class Titler:
    def __init__(
        self, host: SessionHost, store: SessionStore, agents: Agents, announcer: Announcer
    ) -> None:
        self._host = host
        self._store = store
        self._agents = agents
        self._announcer = announcer

    async def title_if_untitled(self, session_id: UUID) -> None:
        session = await self._host.get(session_id)
        if session is None or session.title_source is not TitleSource.DEFAULT:
            return
        first = await self._store.list_messages(session_id, MessageWindow(limit=20))
        user = next((m for m in first.items if m.role is Role.USER), None)
        answer = next((m for m in first.items if m.role is Role.ASSISTANT and m.content), None)
        if user is None:
            return
        agent = self._agents.for_app(session.app)
        try:
            title = await agent.backend.title(
                session.model or agent.default_model,
                user.content,
                answer.content if answer else "",
                api_key=await self._agents.client_key(session.app, session.client_id),
            )
        except ModelError as exc:
            logger.warning("no title for session %s: %s", session_id, exc)
            return
        title = " ".join(title.split())[:TITLE_MAX]
        if not title:
            return
        # Compare-and-set: a title the user set meanwhile is never overwritten.
        updated = await self._host.update(
            session_id,
            {"title": title, "title_source": TitleSource.GENERATED.value},
            expect={"title_source": TitleSource.DEFAULT.value},
        )
        if updated is not None:
            await self._announcer.publish(
                updated, TITLE_CHANGED, {"new_title": title, "source": TitleSource.GENERATED.value}
            )
