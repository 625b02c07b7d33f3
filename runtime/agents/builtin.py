"""`builtin`: a deterministic, offline assistant for development, demos and tests.

It answers every message by streaming it back in chunks, and understands a few
commands at the start of a user message:

    /tool NAME {json args}      call a tool (one line per call; several lines call
                                them in parallel), then report the results
    /slow SECONDS text          stream the answer over SECONDS (to watch or interrupt)
    /fail text                  fail the turn with a model error
    /hang                       never answer (the turn's model timeout ends it)
    /state {json}               replace the session's agent state (Session.state)
    /context                    answer with what it was given: the system prompt
                                (memories and summary included) and how many
                                messages and tokens came with it

Its summaries and memories are deterministic too: the first words of each message,
and "User said: ..." of the exchange.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from runtime.agents.protocol import (
    INVALID_ARGUMENTS,
    MEMORY_CHARS,
    SUMMARY_CHARS,
    ModelChunk,
    ModelError,
    ModelRequest,
    StateUpdate,
    TextDelta,
    ToolCall,
    estimate_tokens,
)

CHUNK_WORDS = 3
_TOOL_LINE = re.compile(r"^/tool\s+([A-Za-z0-9_.-]+)\s*(.*)$")


class BuiltinBackend:
    def __init__(self, chunk_delay: float = 0.0) -> None:
        self.chunk_delay = chunk_delay

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        last = request.messages[-1] if request.messages else {"role": "user", "content": ""}
        if last["role"] == "tool":
            async for chunk in self._chunks(_summarize_tools(request.messages), 0.0):
                yield chunk
            return
        text = str(last.get("content") or "").strip()
        if text.startswith("/tool"):
            calls = _tool_calls(text, turn=len(request.messages))
            if calls:
                for call in calls:
                    yield call
                return
        if text.startswith("/fail"):
            raise ModelError(text.removeprefix("/fail").strip() or "the builtin model failed")
        if text.startswith("/hang"):
            await asyncio.Event().wait()
        if text.startswith("/state"):
            raw = text.removeprefix("/state").strip()
            try:
                state = json.loads(raw or "{}")
            except json.JSONDecodeError:
                state = raw  # refused as not an object, with a notice
            yield StateUpdate(state)
            async for chunk in self._chunks("Saving the state.", 0.0):
                yield chunk
            return
        if text.startswith("/context"):
            answer = _context(request.messages, json.dumps(request.state, sort_keys=True))
            async for chunk in self._chunks(answer, 0.0):
                yield chunk
            return
        seconds = 0.0
        if text.startswith("/slow"):
            _, _, rest = text.partition(" ")
            amount, _, text = rest.strip().partition(" ")
            try:
                seconds = float(amount)
            except ValueError:
                text = rest
        async for chunk in self._chunks(f"You said: {text}" if text else "Hello!", seconds):
            yield chunk

    async def _chunks(self, answer: str, seconds: float) -> AsyncIterator[TextDelta]:
        words = answer.split(" ")
        pieces = [" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
        delay = seconds / len(pieces) if seconds else self.chunk_delay
        for index, piece in enumerate(pieces):
            if delay:
                await asyncio.sleep(delay)
            yield TextDelta(piece if index == 0 else " " + piece)

    async def title(
        self, model: str, user_text: str, answer_text: str, api_key: str | None = None
    ) -> str:
        return heuristic_title(user_text)

    async def summarize(
        self,
        model: str,
        previous: str | None,
        messages: list[dict[str, Any]],
        api_key: str | None = None,
    ) -> str:
        parts = [previous] if previous else []
        parts += [
            f"{m['role']}: {' '.join(str(m.get('content') or '').split()[:8])}" for m in messages
        ]
        return "; ".join(parts)[-SUMMARY_CHARS:]

    async def remember(
        self, model: str, user_text: str, answer_text: str, api_key: str | None = None
    ) -> str:
        text = " ".join(user_text.split())
        return "" if not text or text.startswith("/") else f"User said: {text}"[:MEMORY_CHARS]

    def count_tokens(self, model: str, message: dict[str, Any]) -> int:
        return estimate_tokens(message)

    async def aclose(self) -> None:
        return None


def _context(messages: list[dict[str, Any]], state: str) -> str:
    system = messages[0].get("content", "") if messages and messages[0]["role"] == "system" else ""
    tokens = sum(estimate_tokens(m) for m in messages)
    return f"Context: {system} [messages: {len(messages)}, tokens: {tokens}, state: {state}]"


def heuristic_title(user_text: str) -> str:
    """The first words of the first message, without commands, as a title."""
    text = user_text.strip()
    if text.startswith("/"):
        command, _, rest = text.partition(" ")
        text = rest if command != "/tool" else f"Using {rest.split(' ', 1)[0]}"
        if command == "/slow":
            text = text.partition(" ")[2]
    words = re.sub(r"\s+", " ", text).strip(" ?!.,").split(" ")
    title = " ".join(words[:6])[:60].strip()
    return (title[:1].upper() + title[1:]) if title else "New chat"


def _tool_calls(text: str, turn: int) -> list[ToolCall]:
    calls = []
    for index, line in enumerate(text.splitlines()):
        match = _TOOL_LINE.match(line.strip())
        if match is None:
            continue
        name, raw = match.group(1), match.group(2).strip() or "{}"
        try:
            arguments: Any = json.loads(raw)
        except json.JSONDecodeError:
            arguments = {INVALID_ARGUMENTS: raw}  # reported back as invalid arguments
        if not isinstance(arguments, dict):
            arguments = {INVALID_ARGUMENTS: raw}
        calls.append(ToolCall(call_id=f"call_{turn}_{index}", name=name, arguments=arguments))
    return calls


def _summarize_tools(messages: list[dict[str, Any]]) -> str:
    results = []
    for message in reversed(messages):
        if message["role"] != "tool":
            break
        results.append(f"{message.get('name', 'tool')}: {message['content']}")
    return "Tool results: " + "; ".join(reversed(results))
