"""A local server that speaks the OpenAI Chat Completions wire format, for the
`openai` backend's tests: each streaming request gets the next scripted handler;
non-streaming ones (titles, summaries, memories) go to `complete`, which a test
may replace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.processes import free_port

Handler = Callable[[], Awaitable[Response]]


def sse(*chunks: dict[str, Any]) -> Handler:
    async def respond() -> Response:
        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield f"data: {json.dumps(chunk)}\n\n".encode()
                await asyncio.sleep(0.01)
            yield b"data: [DONE]\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    return respond


def text(*parts: str) -> Handler:
    return sse(*({"choices": [{"index": 0, "delta": {"content": p}}]} for p in parts))


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    async def respond() -> Response:
        return JSONResponse({"error": {"message": f"status {code}"}}, code, headers=headers)

    return respond


def hang(seconds: float) -> Handler:
    async def respond() -> Response:
        await asyncio.sleep(seconds)
        return JSONResponse({})

    return respond


class FakeOpenAI:
    """Answers each streaming request with the next scripted handler."""

    def __init__(self) -> None:
        self.script: list[Handler] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.port = free_port()
        self.complete: Callable[[dict[str, Any]], str] = lambda body: '"Greeting the model"'
        app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if not body.get("stream"):
            answer = self.complete(body)
            return JSONResponse(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
            )
        return await self.script.pop(0)()

    @property
    def streamed(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r.get("stream")]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    task = asyncio.create_task(server.server.serve())
    while not server.server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    yield server
    server.server.should_exit = server.server.force_exit = True
    await task
