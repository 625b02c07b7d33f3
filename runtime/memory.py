"""Wallet memory: what the assistant keeps of a wallet's finished turns, per app.

Opt-in per app (`memory = true`). When a turn of a session bound to a wallet
finishes, the app's backend writes a short memory of the exchange (after the
answer, in the background: nothing waits for it), stored for (app, wallet) with
its source session. A turn's prompt then carries the wallet's memories from its
other sessions: the most related to the question first (shared words), then the
newest, within a token budget. Never across apps (every query names the app),
never for an unbound session. The user owns them: listed, forgotten one by one or
all at once, exported with their session, and deleted with it unless the app
keeps them (`keep_memories = true`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from uuid import UUID

from runtime.agents.protocol import ModelError
from runtime.agents.registry import AppAgent
from runtime.apps import Caller
from runtime.errors import NotFound
from runtime.records import MemoryRecord, SessionRecord
from runtime.store.protocol import MemoryStore
from runtime.validation import public_key_arg

logger = logging.getLogger(__name__)

# Memories a prompt considers (the newest), and at most how many it carries.
CANDIDATES = 50
IN_PROMPT = 8
LISTED = 200  # walletMemory answers at most this many, newest first
_WORD = re.compile(r"[\w']{3,}")


class WalletMemories:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._writing: set[asyncio.Task[None]] = set()

    @staticmethod
    def applies(agent: AppAgent, session: SessionRecord) -> bool:
        return agent.config.memory and session.public_key is not None

    # -- the turn's side -------------------------------------------------------

    async def for_prompt(
        self,
        agent: AppAgent,
        session: SessionRecord,
        question: str,
        budget: int,
        tokens: Callable[[str], int],
    ) -> list[str]:
        """The memories this turn's model sees, at most `budget` tokens in all."""
        if not self.applies(agent, session):
            return []
        assert session.public_key is not None
        found = await self._store.wallet_memories(session.app, session.public_key, CANDIDATES)
        asked = _words(question)
        others = [m for m in found if m.source_session_id != session.id]
        # Newest first already; a stable sort keeps that order among equals.
        others.sort(key=lambda m: len(asked & _words(m.content)), reverse=True)
        chosen: list[str] = []
        for memory in others[:IN_PROMPT]:
            cost = tokens(memory.content)
            if cost > budget:
                break
            budget -= cost
            chosen.append(memory.content)
        return chosen

    def remember_later(
        self,
        agent: AppAgent,
        session: SessionRecord,
        model: str,
        exchange: tuple[str, str],
        api_key: str | None,
    ) -> None:
        """Write a memory of (question, answer) in the background, if the app keeps them."""
        if not self.applies(agent, session) or not exchange[1]:
            return
        task = asyncio.create_task(self._remember(agent, session, model, exchange, api_key))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _remember(
        self,
        agent: AppAgent,
        session: SessionRecord,
        model: str,
        exchange: tuple[str, str],
        api_key: str | None,
    ) -> None:
        assert session.public_key is not None
        try:
            text = await agent.backend.remember(model, *exchange, api_key=api_key)
            text = " ".join(text.split())
            if text:
                await self._store.add_memory(
                    session.app,
                    session.public_key,
                    session.id,
                    text,
                    cascade=not agent.config.keep_memories,
                )
        except ModelError as exc:
            logger.warning("no memory of a turn of session %s: %s", session.id, exc)
        except Exception:
            # The session may be gone meanwhile (its memory with it): never fatal.
            logger.exception("could not store a memory of session %s", session.id)

    async def settled(self) -> None:
        """Until every memory being written is stored (shutdown waits for them)."""
        while self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)

    # -- the user's side -------------------------------------------------------

    async def list(self, caller: Caller, public_key: str) -> list[MemoryRecord]:
        key = public_key_arg("publicKey", public_key)
        return await self._store.wallet_memories(caller.app, key, LISTED)

    async def forget(self, caller: Caller, memory_id: UUID) -> None:
        """Another app's memory is reported exactly like a missing one."""
        if not await self._store.delete_memory(caller.app, memory_id):
            raise NotFound(f"memory {memory_id} not found")

    async def forget_wallet(self, caller: Caller, public_key: str) -> int:
        key = public_key_arg("publicKey", public_key)
        deleted = await self._store.delete_wallet_memories(caller.app, key)
        if not deleted:
            raise NotFound(f"no memories of wallet {key} in this app")
        return deleted


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))
