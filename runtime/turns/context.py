"""A turn's prompt, within the model's context budget however long the session is.

The prompt is the system prompt, the wallet's memories (runtime/memory.py), the
thread's running summary, and as many of the newest messages as fit, the
question always among them. Messages go in whole units: an assistant message
that calls tools together with the results of those calls, never one without
the other. A quarter of the budget is left for the answer.

When older messages no longer fit and the stored summary does not reach them,
they are summarized first, by the app's backend, and the summary is stored with
the range it covers (`up_to_seq`), so it is visible (`Session.contextSummary`)
and reused. It is taken further than needed, until the recent window is half the
room, so the next turns fit again without a new summary: a range is summarized
once. Long ranges are summarized in chunks of at most half the room each, each
stored as it is made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.agents.registry import AppAgent
from runtime.memory import WalletMemories
from runtime.records import MessageRecord, Role, SessionRecord, SummaryRecord
from runtime.store import MessageWindow, SessionStore
from runtime.turns.history import context_for, model_messages

logger = logging.getLogger(__name__)

REPLY_SHARE = 4  # 1/4 of the budget is left for the answer
MEMORY_SHARE = 8  # memories take at most 1/8 of it
PAGE = 200
MAX_PASSES = 5

Count = Callable[[dict[str, Any]], int]


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: list[dict[str, Any]]
    tokens: int
    summary: SummaryRecord | None


@dataclass(frozen=True, slots=True)
class _Unit:
    """Stored messages that go to the model together, and their tokens."""

    records: tuple[MessageRecord, ...]
    model: tuple[dict[str, Any], ...]
    tokens: int

    @property
    def first_seq(self) -> int:
        return self.records[0].seq


@dataclass(frozen=True, slots=True)
class _For:
    """The turn a prompt is built for."""

    agent: AppAgent
    session: SessionRecord
    question: MessageRecord
    model: str
    api_key: str | None


class ContextBuilder:
    def __init__(self, store: SessionStore, memories: WalletMemories) -> None:
        self._store = store
        self._memories = memories

    async def build(
        self,
        agent: AppAgent,
        session: SessionRecord,
        question: MessageRecord,
        model: str,
        api_key: str | None,
    ) -> Prompt:
        budget = agent.config.model.context_tokens(model)
        room = budget - budget // REPLY_SHARE

        def count(message: dict[str, Any]) -> int:
            return agent.backend.count_tokens(model, message)

        memories = await self._memories.for_prompt(
            agent,
            session,
            question.content,
            budget // MEMORY_SHARE,
            lambda text: count({"role": "system", "content": text}),
        )
        units = _units(await self._recent(question, room, count), question, count)
        summary: SummaryRecord | None = None
        looked = False  # for the stored summary: only once something does not fit
        for _ in range(MAX_PASSES):
            system = _system(agent.config.model.system_prompt, memories, summary)
            kept = _fit(units, room - count(system))
            covered = summary.up_to_seq if summary else 0
            if kept[0].first_seq - 1 <= covered:
                break
            if not looked:
                looked = True
                summary = await self._store.latest_summary(question.thread_id)
                if summary is not None:
                    units = [u for u in units if u.first_seq > summary.up_to_seq]
                    continue
            # Older messages would be lost: summarize up to where the window is half.
            half = _fit(kept, (room - count(system)) // 2)
            turn = _For(agent, session, question, model, api_key)
            extended = await self._summarize(turn, summary, half[0].first_seq - 1, count)
            if extended is None:  # nothing stored in that range after all
                break
            summary = extended
            units = [u for u in units if u.first_seq > summary.up_to_seq]
        else:
            logger.warning("session %s: context still over budget after summaries", session.id)
        messages = [system, *(m for unit in kept for m in unit.model)]
        return Prompt(messages, sum(count(m) for m in messages), summary)

    async def _recent(
        self, question: MessageRecord, room: int, count: Count
    ) -> list[MessageRecord]:
        """The newest messages of the thread, at least `room` tokens of them (or all),
        oldest first."""
        found: list[MessageRecord] = []
        tokens = 0
        before: int | None = None
        while tokens <= room:
            page = await self._store.list_messages(
                question.thread_id, MessageWindow(limit=PAGE, before=before, from_end=True)
            )
            found[:0] = page.items
            tokens += sum(count(m) for r in page.items for m in model_messages(r))
            if not page.has_previous or not page.items:
                break
            before = page.items[0].seq
        return found

    async def _summarize(
        self, turn: _For, summary: SummaryRecord | None, up_to: int, count: Count
    ) -> SummaryRecord | None:
        """Extend the running summary to `up_to`, a chunk at a time, each stored;
        None if there was nothing to add."""
        room = turn.agent.config.model.context_tokens(turn.model)
        chunk_tokens = (room - room // REPLY_SHARE) // 2
        after = summary.up_to_seq if summary else 0
        latest = summary
        chunk: list[dict[str, Any]] = []
        tokens = 0
        last_seq = after
        while last_seq < up_to:
            page = await self._store.list_messages(
                turn.question.thread_id, MessageWindow(limit=PAGE, after=last_seq)
            )
            records = [r for r in page.items if r.seq <= up_to]
            if not records:
                break
            for record in records:
                for message in model_messages(record):
                    chunk.append(message)
                    tokens += count(message)
                last_seq = record.seq
                if tokens >= chunk_tokens:
                    latest = await self._store_summary(turn, latest, chunk, last_seq)
                    chunk, tokens = [], 0
            if not page.has_next:
                break
        if chunk:
            latest = await self._store_summary(turn, latest, chunk, last_seq)
        return None if latest is summary else latest

    async def _store_summary(
        self, turn: _For, previous: SummaryRecord | None, chunk: list[dict[str, Any]], up_to: int
    ) -> SummaryRecord:
        text = await turn.agent.backend.summarize(
            turn.model, previous.content if previous else None, chunk, api_key=turn.api_key
        )
        return await self._store.add_summary(turn.session.id, turn.question.thread_id, up_to, text)


def _system(prompt: str, memories: list[str], summary: SummaryRecord | None) -> dict[str, Any]:
    parts = [prompt]
    if memories:
        parts.append(
            "What you remember of earlier conversations with this user:\n"
            + "\n".join(f"- {memory}" for memory in memories)
        )
    if summary is not None:
        parts.append(f"Summary of the earlier part of this conversation:\n{summary.content}")
    return {"role": "system", "content": "\n\n".join(parts)}


def _units(history: list[MessageRecord], question: MessageRecord, count: Count) -> list[_Unit]:
    """What this turn's model may see (`context_for`), in whole units."""
    units: list[_Unit] = []
    for record in context_for(question, [m for m in history if m.id != question.id]):
        model = model_messages(record)
        tokens = sum(count(m) for m in model)
        if record.role is Role.TOOL:
            if units and units[-1].model and units[-1].model[0].get("tool_calls"):
                last = units[-1]
                units[-1] = _Unit(
                    (*last.records, record), (*last.model, *model), last.tokens + tokens
                )
            # A result whose call is not in view: models reject it; left out.
            continue
        units.append(_Unit((record,), tuple(model), tokens))
    return units


def _fit(units: list[_Unit], room: int) -> list[_Unit]:
    """The newest units within `room` tokens; the newest (the question) always."""
    kept: list[_Unit] = []
    for unit in reversed(units):
        if kept and unit.tokens > room:
            break
        room -= unit.tokens
        kept.append(unit)
    return kept[::-1]
