"""`openai`: any OpenAI-compatible Chat Completions endpoint, streamed, with tools.

Config (per app, `[apps.NAME.model]`): `base_url`, `api_key_env` (the name of the
environment variable holding the key), `timeout` (seconds without data before
the call fails), `max_retries` and `retry_backoff` (429, 5xx and connection
failures are retried with exponential backoff before anything was streamed).

A request may carry the client's own key (`ModelRequest.api_key`, bring your own
key): it replaces the app's in the `Authorization` header of that request. No key
appears in an error message (the provider's answer is redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from runtime.agents.protocol import (
    INVALID_ARGUMENTS,
    MEMORY_CHARS,
    MEMORY_PROMPT,
    SUMMARY_CHARS,
    SUMMARY_PROMPT,
    ModelError,
    ModelRequest,
    TextDelta,
    ToolCall,
    estimate_tokens,
)

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
TITLE_PROMPT = (
    "Write a title of at most six words for a conversation that starts like this. "
    "Answer with the title only, no quotes."
)


@dataclass
class _PartialCall:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAIBackend:
    def __init__(self, options: Mapping[str, Any]) -> None:
        base_url = options.get("base_url")
        if not isinstance(base_url, str) or not base_url:
            raise ValueError("the openai backend needs model.base_url")
        key_env = options.get("api_key_env")
        api_key = os.environ.get(str(key_env), "") if key_env else ""
        self.timeout = float(options.get("timeout", 30))
        self.max_retries = int(options.get("max_retries", 2))
        self.retry_backoff = float(options.get("retry_backoff", 0.5))
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=httpx.Timeout(self.timeout)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[TextDelta | ToolCall]:
        async with contextlib.aclosing(self._stream(request)) as chunks:
            try:
                async for chunk in chunks:
                    yield chunk
            except ModelError as exc:
                raise ModelError(_redact(str(exc), request.api_key)) from None

    async def _stream(self, request: ModelRequest) -> AsyncGenerator[TextDelta | ToolCall, None]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "stream": True,
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
        calls: dict[int, _PartialCall] = {}
        async with self._open_stream(body, request.api_key) as response:
            try:
                async for line in response.aiter_lines():
                    payload = _data(line)
                    if payload is None:
                        continue
                    if payload == "[DONE]":
                        break
                    for chunk in _parse_chunk(payload, calls):
                        yield chunk
            except httpx.TimeoutException:
                raise ModelError(f"the model sent nothing for {self.timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise ModelError(f"the model stream broke: {exc}") from None
        for index in sorted(calls):
            yield _finish_call(calls[index], index)

    def _open_stream(self, body: dict[str, Any], api_key: str | None = None) -> _RetryingStream:
        return _RetryingStream(self, body, _auth(api_key))

    async def title(
        self, model: str, user_text: str, answer_text: str, api_key: str | None = None
    ) -> str:
        exchange = [
            {"role": "user", "content": user_text[:2000]},
            {"role": "assistant", "content": answer_text[:2000]},
        ]
        text = await self._complete(model, TITLE_PROMPT, exchange, api_key, "title generation")
        return text.strip("\"'").strip()[:200]

    async def summarize(
        self,
        model: str,
        previous: str | None,
        messages: list[dict[str, Any]],
        api_key: str | None = None,
    ) -> str:
        lines = [f"Summary so far: {previous}"] if previous else []
        lines += [f"{m['role']}: {m.get('content') or ''}"[:2000] for m in messages]
        conversation = [{"role": "user", "content": "\n".join(lines)}]
        text = await self._complete(model, SUMMARY_PROMPT, conversation, api_key, "summary")
        return text[:SUMMARY_CHARS]

    async def remember(
        self, model: str, user_text: str, answer_text: str, api_key: str | None = None
    ) -> str:
        said = f"User: {user_text[:2000]}\nAssistant: {answer_text[:2000]}"
        exchange = [{"role": "user", "content": said}]
        text = await self._complete(model, MEMORY_PROMPT, exchange, api_key, "memory")
        return "" if text.upper().startswith("NOTHING") else text[:MEMORY_CHARS]

    def count_tokens(self, model: str, message: dict[str, Any]) -> int:
        return estimate_tokens(message)  # no tokenizer for an arbitrary OpenAI-wire model

    async def _complete(
        self,
        model: str,
        instruction: str,
        messages: list[dict[str, Any]],
        api_key: str | None,
        what: str,
    ) -> str:
        """One non-streamed completion with `instruction` as its system prompt."""
        body = {
            "model": model,
            "messages": [{"role": "system", "content": instruction}, *messages],
            "stream": False,
        }
        try:
            response = await self._client.post(
                "/chat/completions", json=body, headers=_auth(api_key)
            )
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            raise ModelError(_redact(f"{what} failed: {exc}", api_key)) from None
        return str(text).strip()


class _RetryingStream:
    """Opens the streaming response, retrying what is worth retrying."""

    def __init__(
        self, backend: OpenAIBackend, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self.backend = backend
        self.body = body
        self.headers = headers
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        backend = self.backend
        for attempt in range(backend.max_retries + 1):
            last = attempt == backend.max_retries
            try:
                request = backend._client.build_request(
                    "POST", "/chat/completions", json=self.body, headers=self.headers
                )
                response = await backend._client.send(request, stream=True)
            except httpx.TimeoutException:
                if last:
                    raise ModelError(
                        f"the model did not answer within {backend.timeout:g}s"
                    ) from None
                await self._sleep(attempt, None)
                continue
            except httpx.HTTPError as exc:
                if last:
                    raise ModelError(f"cannot reach the model: {exc}") from None
                await self._sleep(attempt, None)
                continue
            if response.status_code < 400:
                self._response = response
                return response
            detail = (await response.aread()).decode(errors="replace")[:300]
            await response.aclose()
            if response.status_code not in RETRYABLE_STATUS or last:
                raise ModelError(f"the model answered HTTP {response.status_code}: {detail}")
            logger.info("model answered %s; retrying", response.status_code)
            await self._sleep(attempt, response.headers.get("retry-after"))
        raise ModelError("unreachable")  # the loop returns or raises

    async def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backend.retry_backoff * (2**attempt)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = min(float(retry_after), 30.0)
        await asyncio.sleep(delay)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _auth(api_key: str | None) -> dict[str, str] | None:
    """The headers of a request made with the client's own key (None: the app's)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else None


def _redact(message: str, api_key: str | None) -> str:
    """An error message without the client's key (a provider may echo it)."""
    if api_key and api_key in message:
        return message.replace(api_key, "[redacted key]")
    return message


def _data(line: str) -> str | None:
    line = line.strip()
    if not line.startswith("data:"):
        return None
    return line[len("data:") :].strip()


def _parse_chunk(payload: str, calls: dict[int, _PartialCall]) -> list[TextDelta]:
    try:
        chunk = json.loads(payload)
    except json.JSONDecodeError:
        raise ModelError(f"the model sent invalid JSON: {payload[:100]}") from None
    if "error" in chunk:
        raise ModelError(f"the model reported an error: {chunk['error']}")
    texts: list[TextDelta] = []
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content"):
            texts.append(TextDelta(delta["content"]))
        for part in delta.get("tool_calls") or []:
            partial = calls.setdefault(int(part.get("index", 0)), _PartialCall())
            partial.call_id = part.get("id") or partial.call_id
            function = part.get("function") or {}
            partial.name = function.get("name") or partial.name
            if function.get("arguments"):
                partial.arguments.append(function["arguments"])
    return texts


def _finish_call(partial: _PartialCall, index: int) -> ToolCall:
    raw = "".join(partial.arguments) or "{}"
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError:
        arguments = {INVALID_ARGUMENTS: raw}
    if not isinstance(arguments, dict):
        arguments = {INVALID_ARGUMENTS: raw}
    return ToolCall(
        call_id=partial.call_id or f"call_{index}", name=partial.name, arguments=arguments
    )
