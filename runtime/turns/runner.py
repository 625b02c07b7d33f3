"""One turn: the model streams, tools run, the model continues until it answers.

Every step is stored before it is announced: the assistant's tool calls, each
tool's result, the final answer. Text is published as `message_delta` while it
streams (and visible in snapshots) and checkpointed on the turn's row (so a crash
keeps it); a model failure ends the turn with a `SystemError` system event and a
`system_notice`; an interrupt keeps the partial text, marked interrupted. A shutdown
cancels the turn too, but records nothing: the turn stays `running` with its
checkpoint, and the next holder of the session resumes it (runtime/turns/queue.py).

Secrets (runtime/vault): a tool call's arguments may hold handles (`$SECRET:name`)
of the session's client's secrets. The tool receives the values; everything it
produces (result, progress, error) has them replaced by the handles again before
it is stored, published, logged or given to the model. The model, the stored
calls and `tool_update` keep the handles. A session whose client saved a key for
the app's provider (bring your own key) has its model called with that key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from runtime.agents.protocol import ModelError, ModelRequest, StateUpdate, TextDelta, ToolCall
from runtime.agents.registry import Agents, AppAgent
from runtime.agents.tools import ToolContext, ToolError, ToolOutcome, run_tool
from runtime.announcer import Announcer
from runtime.conversations import Conversations
from runtime.errors import InvalidInput, is_unavailable
from runtime.events.envelope import (
    MESSAGE_DELTA,
    SYSTEM_NOTICE,
    TOOL_COMPLETE,
    TOOL_UPDATE,
)
from runtime.memory import WalletMemories
from runtime.notices import post_notice
from runtime.records import JSONObject, MessageRecord, Role, SessionRecord, TurnStatus
from runtime.sessions import SessionHost
from runtime.store import NewMessage, SessionStore
from runtime.telemetry import tracing
from runtime.telemetry.metrics import Metrics
from runtime.turns.checkpoint import Checkpoint, keep_partial
from runtime.turns.context import ContextBuilder
from runtime.turns.history import model_messages
from runtime.turns.streams import StreamingMessage, Streams
from runtime.vault import Resolved
from runtime.vault.handles import names_in

logger = logging.getLogger(__name__)

MAX_TOOL_ROUNDS = 8
INTERRUPTION = {"type": "user_request", "kind": "Interruption", "payload": "Interrupted by user"}


@dataclass(frozen=True, slots=True)
class Turn:
    id: int  # the stored turn's row
    session_id: UUID
    thread_id: UUID
    app: str
    question: MessageRecord  # the user message this turn answers


class TurnRunner:
    def __init__(
        self,
        host: SessionHost,
        store: SessionStore,
        agents: Agents,
        announcer: Announcer,
        streams: Streams,
        conversations: Conversations,
        memories: WalletMemories,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics()
        self._memories = memories
        self._context = ContextBuilder(store, memories)
        self._host = host
        self._store = store
        self._agents = agents
        self._announcer = announcer
        self._streams = streams
        self._conversations = conversations
        # Set by the scheduler's shutdown: a cancellation then is not the user's.
        self.stopping = False
        # What each running turn sent the model: (messages, tokens), taken at its end.
        self.usage: dict[int, tuple[int, int]] = {}

    async def run(self, turn: Turn) -> TurnStatus:
        """Answer the turn; how it ended (an interrupt raises CancelledError)."""
        session = await self._host.get(turn.session_id)
        if session is None:  # deleted while queued
            return TurnStatus.CANCELLED
        checkpoint = Checkpoint(self._store, turn.id)
        try:
            return await self._answer(turn, session, checkpoint)
        finally:
            await checkpoint.close()

    async def _answer(
        self, turn: Turn, session: SessionRecord, checkpoint: Checkpoint
    ) -> TurnStatus:
        agent = self._agents.for_app(turn.app)
        model = session.model or agent.default_model
        specs = [t.spec for t in agent.tools.values()]
        api_key = await self._agents.client_key(session.app, session.client_id)
        prompt = await self._context.build(agent, session, turn.question, model, api_key)
        messages = prompt.messages
        # Stored with the turn's end (runtime/turns/queue.py), not in a write of its own.
        self.usage[turn.id] = (len(messages), prompt.tokens)
        backend = agent.config.model.backend
        self._metrics.prompt_messages.labels(backend).observe(len(messages))
        self._metrics.prompt_tokens.labels(backend).observe(prompt.tokens)
        for _ in range(MAX_TOOL_ROUNDS):
            streaming = self._streams.start(turn.session_id, turn.thread_id)
            try:
                calls = await self._stream(
                    agent,
                    session,
                    streaming,
                    checkpoint,
                    ModelRequest(model, messages, specs, api_key=api_key, state=session.state),
                )
            except (ModelError, TimeoutError) as exc:
                await self._fail(session, streaming, exc, agent)
                return TurnStatus.FAILED
            except asyncio.CancelledError:
                if self.stopping:
                    await asyncio.shield(checkpoint.flush())
                else:
                    await self._interrupted(session, streaming)
                raise
            finally:
                self._streams.end(streaming)
            if not calls:
                await self._add(
                    session,
                    NewMessage(
                        session_id=session.id,
                        thread_id=turn.thread_id,
                        role=Role.ASSISTANT,
                        content=streaming.text,
                        id=streaming.id,
                    ),
                )
                exchange = (turn.question.content, streaming.text)
                self._memories.remember_later(agent, session, model, exchange, api_key)
                return TurnStatus.DONE
            # From here on the turn has effects beyond text: never re-run after a crash.
            await checkpoint.close()
            await self._store.update_turn(
                turn.id, {"tool_started": True, "partial_text": "", "reply_id": None}
            )
            messages += await self._run_tools(agent, session, turn.thread_id, streaming, calls)
        await self._note(session, "error", "the assistant kept calling tools; the turn was stopped")
        return TurnStatus.FAILED

    async def _stream(
        self,
        agent: AppAgent,
        session: SessionRecord,
        streaming: StreamingMessage,
        checkpoint: Checkpoint,
        request: ModelRequest,
    ) -> list[ToolCall]:
        calls: list[ToolCall] = []
        backend = agent.config.model.backend
        started = time.perf_counter()
        outcome = "ok"
        attributes = {"confab.backend": backend, "confab.model": request.model}
        try:
            with tracing.span("model", attributes):
                await self._read_stream(agent, session, streaming, checkpoint, request, calls)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.model_duration.labels(backend, outcome).observe(elapsed)
            logger.debug(
                "model call %s (%s, %s): %.1fms, %d tool calls",
                outcome,
                backend,
                request.model,
                elapsed * 1000,
                len(calls),
                extra={"backend": backend, "model": request.model, "outcome": outcome},
            )
        return calls

    async def _read_stream(
        self,
        agent: AppAgent,
        session: SessionRecord,
        streaming: StreamingMessage,
        checkpoint: Checkpoint,
        request: ModelRequest,
        calls: list[ToolCall],
    ) -> None:
        async with asyncio.timeout(agent.model_timeout):
            async for chunk in agent.backend.stream(request):
                if isinstance(chunk, TextDelta):
                    streaming.parts.append(chunk.text)
                    checkpoint.update(streaming.id, streaming.text)
                    await self._announcer.publish(
                        session,
                        MESSAGE_DELTA,
                        {
                            "message_id": str(streaming.id),
                            "thread_id": str(streaming.thread_id),
                            "delta": chunk.text,
                        },
                    )
                elif isinstance(chunk, StateUpdate):
                    await self._save_state(session, chunk.state)
                else:
                    calls.append(chunk)

    async def _run_tools(
        self,
        agent: AppAgent,
        session: SessionRecord,
        thread_id: UUID,
        streaming: StreamingMessage,
        calls: list[ToolCall],
    ) -> list[dict[str, Any]]:
        """Store the calls, run them in parallel, store each result; returns the
        messages that continue the model's conversation (as the stored ones read)."""
        asked = await self._add(
            session,
            NewMessage(
                session_id=session.id,
                thread_id=thread_id,
                role=Role.ASSISTANT,
                content=streaming.text,
                tool_calls=[
                    {"call_id": c.call_id, "tool_name": c.name, "arguments": c.arguments}
                    for c in calls
                ],
                id=streaming.id,
            ),
        )
        outcomes = await asyncio.gather(*(self._run_tool(agent, session, c) for c in calls))
        continuation = model_messages(asked)
        for call, outcome in zip(calls, outcomes, strict=True):
            answered = await self._add(
                session,
                NewMessage(
                    session_id=session.id,
                    thread_id=thread_id,
                    role=Role.TOOL,
                    content=json.dumps(outcome.as_json()),
                    tool_results=[
                        {"call_id": call.call_id, "tool_name": call.name, **outcome.as_json()}
                    ],
                ),
            )
            continuation += model_messages(answered)
        return continuation

    async def _run_tool(
        self, agent: AppAgent, session: SessionRecord, call: ToolCall
    ) -> ToolOutcome:
        run_id = str(uuid4())
        base = {"id": run_id, "call_id": call.call_id, "tool_name": call.name}
        secrets = Resolved()

        async def report(progress: dict[str, Any]) -> None:
            await self._announcer.publish(
                session,
                TOOL_UPDATE,
                {**base, "result": {"status": "running", "progress": secrets.redact(progress)}},
            )

        await self._announcer.publish(
            session,
            TOOL_UPDATE,
            {**base, "result": {"status": "running", "arguments": call.arguments}},
        )
        try:
            secrets = await self._secrets_for(session, call.arguments)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            logger.warning("tool %s: secrets unavailable: %r", call.name, exc)
            outcome = ToolOutcome(error="the secrets its arguments name cannot be read now")
        else:
            found = agent.tools.get(call.name)
            # The app's configured names only: a model may call anything.
            label = call.name if found is not None else "unknown"
            started = time.perf_counter()
            with tracing.span("tool", {"confab.tool": label}) as current:
                outcome = redacted(
                    secrets,
                    await run_tool(
                        found,
                        call.name,
                        secrets.fill(call.arguments),
                        ToolContext(
                            session=session,
                            report=report,
                            # As now (an earlier tool of this turn may have saved it).
                            state=dict((await self._host.get(session.id) or session).state),
                            save_state=lambda state: self._tool_state(session, state),
                        ),
                        agent.tool_timeout,
                        redact=secrets.redact_text if secrets else None,
                    ),
                )
                if current is not None and outcome.error is not None:
                    current.set_attribute("confab.tool.error", True)
            elapsed = time.perf_counter() - started
            ended = "ok" if outcome.error is None else "error"
            self._metrics.tool_duration.labels(label).observe(elapsed)
            self._metrics.tool_runs.labels(label, ended).inc()
            logger.debug(
                "tool %s %s: %.1fms",
                label,
                ended,
                elapsed * 1000,
                extra={"tool": label, "outcome": ended},
            )
        result = {"error": outcome.error} if outcome.error is not None else outcome.result
        await self._announcer.publish(session, TOOL_COMPLETE, {**base, "result": result})
        return outcome

    async def _tool_state(self, session: SessionRecord, state: JSONObject) -> None:
        try:
            await self._conversations.update_state(session, state)
        except InvalidInput as exc:
            raise ToolError(f"state not saved: {exc}") from None

    async def _secrets_for(self, session: SessionRecord, arguments: dict[str, Any]) -> Resolved:
        """The values of the session's client's secrets that the arguments' handles
        name (none without a vault, a client or handles)."""
        vault = self._agents.vault
        names = names_in(arguments)
        if vault is None or session.client_id is None or not names:
            return Resolved()
        values = await vault.secrets.resolve(session.app, session.client_id, names)
        return Resolved(values)

    async def _save_state(self, session: SessionRecord, state: JSONObject) -> None:
        """The backend's write of the session's agent state; refused, a notice."""
        try:
            await self._conversations.update_state(session, state)
        except InvalidInput as exc:
            await self._note(session, "error", f"The assistant's state was not saved: {exc}")

    async def _add(self, session: SessionRecord, message: NewMessage) -> MessageRecord:
        stored, _ = await self._conversations.append(session, message)
        return stored

    async def _fail(
        self, session: SessionRecord, streaming: StreamingMessage, error: Exception, agent: AppAgent
    ) -> None:
        reason = str(error) or f"the model did not answer within {agent.model_timeout:g}s"
        logger.warning("turn of session %s failed: %s", session.id, reason)
        await keep_partial(
            self._conversations, session, streaming.thread_id, streaming.id, streaming.text
        )
        await self._note(session, "error", f"The assistant failed: {reason}")

    async def _interrupted(self, session: SessionRecord, streaming: StreamingMessage) -> None:
        # Shielded: the turn is being cancelled, but what it produced must be kept.
        await asyncio.shield(self._record_interruption(session, streaming))

    async def _record_interruption(
        self, session: SessionRecord, streaming: StreamingMessage
    ) -> None:
        await keep_partial(
            self._conversations, session, streaming.thread_id, streaming.id, streaming.text
        )
        await self._host.add_system_event(session.id, "inline_call", dict(INTERRUPTION))
        await self._announcer.publish(session, SYSTEM_NOTICE, {"message": INTERRUPTION["payload"]})

    async def _note(self, session: SessionRecord, kind: str, message: str) -> None:
        await post_notice(self._host, self._announcer, session, kind, message)


def redacted(secrets: Resolved, outcome: ToolOutcome) -> ToolOutcome:
    """The outcome with the values of the secrets the call used replaced by handles."""
    if not secrets:
        return outcome
    if outcome.error is not None:
        return ToolOutcome(error=secrets.redact_text(outcome.error))
    return ToolOutcome(result=secrets.redact(outcome.result))
