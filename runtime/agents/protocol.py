"""The model backend protocol: a conversation in, a stream of text and tool calls out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# The arguments of a tool call whose JSON did not parse: {INVALID_ARGUMENTS: raw text}.
INVALID_ARGUMENTS = "__invalid_json__"

# The dedicated prompts of a backend that writes with a model, and the bounds of
# what any backend writes (a summary goes into every later prompt of its thread).
SUMMARY_PROMPT = (
    "Summarize this conversation for the assistant that continues it: what the user "
    "wants, facts the user stated, decisions made, open questions. At most 200 words; "
    "plain sentences, no preamble."
)
MEMORY_PROMPT = (
    "Write one short memory of this exchange for future conversations with the same "
    "user: what the user wanted, facts the user stated about themselves, decisions. "
    "At most 60 words. If nothing is worth remembering, answer NOTHING."
)
SUMMARY_CHARS = 2_000
MEMORY_CHARS = 500
# Tokens beyond a message's text that chat formats spend on each message.
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(message: dict[str, Any]) -> int:
    """A message's tokens without a tokenizer: one per 4 bytes of UTF-8 of what the
    model reads (content, tool calls), plus the per-message overhead. English text
    averages about 4 bytes a token in GPT-style BPE vocabularies; other scripts spend
    more bytes per token, so the estimate errs on the safe (larger) side for them."""
    text = message.get("content") or ""
    calls = message.get("tool_calls")
    size = len(str(text).encode()) + (len(json.dumps(calls).encode()) if calls else 0)
    return MESSAGE_OVERHEAD_TOKENS + (size + 3) // 4


class ModelError(Exception):
    """The model could not answer (HTTP error, bad response, timeout)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    model: str
    # OpenAI Chat Completions messages: {"role", "content", "tool_calls"?, "tool_call_id"?}.
    messages: list[dict[str, Any]]
    tools: list[ToolSpec] = field(default_factory=list)
    # The client's own provider key (bring your own key), used instead of the app's.
    api_key: str | None = field(default=None, repr=False)
    # The session's agent state (`Session.state`), which a backend may replace by
    # yielding a `StateUpdate`.
    state: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """The session's agent state, replaced (stored before the stream goes on)."""

    state: dict[str, Any]


ModelChunk = TextDelta | ToolCall | StateUpdate


class ModelBackend(Protocol):
    def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """Text deltas as they are produced; tool calls once complete. When the
        stream yields tool calls, the turn runs them and asks again."""
        ...

    async def title(
        self, model: str, user_text: str, answer_text: str, api_key: str | None = None
    ) -> str:
        """A short title for a conversation that starts with this exchange
        (`api_key`: the client's own provider key, as in `ModelRequest`)."""
        ...

    async def summarize(
        self,
        model: str,
        previous: str | None,
        messages: list[dict[str, Any]],
        api_key: str | None = None,
    ) -> str:
        """A running summary: `previous` (what earlier summaries said) and these
        messages (model format), in at most `SUMMARY_CHARS`."""
        ...

    async def remember(
        self, model: str, user_text: str, answer_text: str, api_key: str | None = None
    ) -> str:
        """A memory of this exchange for the user's later sessions (at most
        `MEMORY_CHARS`), or "" when nothing is worth keeping."""
        ...

    def count_tokens(self, model: str, message: dict[str, Any]) -> int:
        """A model-format message's tokens: the backend's tokenizer where it has one,
        else `estimate_tokens`."""
        ...

    async def aclose(self) -> None: ...
