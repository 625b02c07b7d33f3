"""The model backend protocol: a conversation in, a stream of text and tool calls out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# The arguments of a tool call whose JSON did not parse: {INVALID_ARGUMENTS: raw text}.
INVALID_ARGUMENTS = "__invalid_json__"


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


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


ModelChunk = TextDelta | ToolCall


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

    async def aclose(self) -> None: ...
