"""The `openai` backend against a local server that speaks the Chat Completions wire
format: streamed `data:` chunks and `[DONE]`, tool-call deltas split across chunks,
429-then-success, 500s and a hang. No test needs the internet."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.responses import Response, StreamingResponse

from server import create_app
from settings import AppConfig, ModelConfig, Settings
from tests.conftest import GraphQLClient, new_id, started
from tests.fake_openai import FakeOpenAI, hang, sse, status, text
from tests.fake_openai import fake as fake  # a fixture


@pytest.fixture
async def gql(
    fake: FakeOpenAI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[GraphQLClient]:
    monkeypatch.setenv("CONFAB_TEST_OPENAI_KEY", "sk-test-123")
    model = ModelConfig(
        backend="openai",
        models=("gpt-test", "gpt-test-large"),
        system_prompt="Be brief.",
        options={
            "base_url": f"http://127.0.0.1:{fake.port}/v1",
            "api_key_env": "CONFAB_TEST_OPENAI_KEY",
            "timeout": 0.5,
            "max_retries": 2,
            "retry_backoff": 0.01,
        },
    )
    apps = {"default": AppConfig(name="default", display_name="Default", model=model)}
    app = create_app(settings.with_overrides(apps=apps))
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield GraphQLClient(http)


SEND = "mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id } }"
STATE = """
query($s: ID!) {
  session(id: $s) {
    title isProcessing
    messages(first: 20) { nodes { role content toolCalls toolResults } }
    systemEvents { kind payload }
  }
}"""


async def finished(gql: GraphQLClient, session_id: str) -> dict[str, Any]:
    for _ in range(200):
        session = (await gql.data(STATE, s=session_id))["session"]
        if not session["isProcessing"]:
            return session  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise TimeoutError("still processing")


async def test_streams_text_and_generates_a_title(fake: FakeOpenAI, gql: GraphQLClient) -> None:
    fake.script = [text("Hel", "lo ", "there!")]
    session_id = new_id()
    await gql.data(SEND, s=session_id, c="Hi model")
    session = await finished(gql, session_id)
    assert [(m["role"], m["content"]) for m in session["messages"]["nodes"]] == [
        ("USER", "Hi model"),
        ("ASSISTANT", "Hello there!"),
    ]
    assert session["title"] == "Greeting the model"
    first = fake.streamed[0]
    assert first["model"] == "gpt-test"
    assert first["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi model"},
    ]
    assert {t["function"]["name"] for t in first["tools"]} == {
        "current_time",
        "calculator",
        "wallet_address",
    }
    assert fake.headers[0]["authorization"] == "Bearer sk-test-123"


async def test_parallel_tool_calls_split_across_chunks(
    fake: FakeOpenAI, gql: GraphQLClient
) -> None:
    def call_delta(index: int, **function: str) -> dict[str, Any]:
        part: dict[str, Any] = {"index": index, "function": function}
        if "name" in function:
            part.update(id=f"call_{index}", type="function")
        return {"choices": [{"index": 0, "delta": {"tool_calls": [part]}}]}

    fake.script = [
        sse(
            call_delta(0, name="calculator", arguments=""),
            call_delta(0, arguments='{"expres'),
            call_delta(1, name="current_time", arguments="{}"),
            call_delta(0, arguments='sion": "1 + 2"}'),
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ),
        text("It is 3."),
    ]
    session_id = new_id()
    await gql.data(SEND, s=session_id, c="What is 1 + 2, and the time?")
    session = await finished(gql, session_id)
    _, calls, result_a, result_b, answer = session["messages"]["nodes"]
    assert calls["toolCalls"] == [
        {"call_id": "call_0", "tool_name": "calculator", "arguments": {"expression": "1 + 2"}},
        {"call_id": "call_1", "tool_name": "current_time", "arguments": {}},
    ]
    assert result_a["toolResults"][0]["result"]["value"] == 3
    assert result_b["toolResults"][0]["result"]["timezone"] == "UTC"
    assert answer["content"] == "It is 3."

    follow_up = fake.streamed[1]["messages"]
    assert follow_up[-3]["role"] == "assistant"
    assert [c["id"] for c in follow_up[-3]["tool_calls"]] == ["call_0", "call_1"]
    assert follow_up[-2]["role"] == "tool"
    assert follow_up[-2]["tool_call_id"] == "call_0"
    assert json.loads(follow_up[-2]["content"])["result"]["value"] == 3
    assert follow_up[-1]["tool_call_id"] == "call_1"


async def test_a_429_is_retried(fake: FakeOpenAI, gql: GraphQLClient) -> None:
    fake.script = [status(429, {"Retry-After": "0"}), text("after retry")]
    session_id = new_id()
    await gql.data(SEND, s=session_id, c="hello")
    session = await finished(gql, session_id)
    assert session["messages"]["nodes"][-1]["content"] == "after retry"
    assert len(fake.streamed) == 2
    assert session["systemEvents"] == []


async def test_a_500_ends_the_turn_with_a_system_error(
    fake: FakeOpenAI, gql: GraphQLClient
) -> None:
    fake.script = [status(500), status(500), status(500)]  # every attempt fails
    session_id = new_id()
    await gql.data(SEND, s=session_id, c="hello")
    session = await finished(gql, session_id)
    assert len(fake.streamed) == 3
    assert [m["content"] for m in session["messages"]["nodes"]] == ["hello"]  # kept
    [error] = session["systemEvents"]
    assert error["kind"] == "error"
    assert "HTTP 500" in error["payload"]["message"]

    fake.script = [text("recovered")]
    await gql.data(SEND, s=session_id, c="again")
    session = await finished(gql, session_id)
    assert session["messages"]["nodes"][-1]["content"] == "recovered"


async def test_a_hang_times_out(fake: FakeOpenAI, gql: GraphQLClient) -> None:
    fake.script = [hang(3), hang(3), hang(3)]
    session_id = new_id()
    await gql.data(SEND, s=session_id, c="hello")
    session = await finished(gql, session_id)
    [error] = session["systemEvents"]
    assert "did not answer within 0.5s" in error["payload"]["message"]


async def test_a_stream_that_stalls_midway_times_out(fake: FakeOpenAI, gql: GraphQLClient) -> None:
    async def stall() -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "partial"}}]}\n\n'
            await asyncio.sleep(3)

        return StreamingResponse(body(), media_type="text/event-stream")

    fake.script = [stall]
    session_id = new_id()
    await gql.data(SEND, s=session_id, c="hello")
    session = await finished(gql, session_id)
    assert "sent nothing for 0.5s" in session["systemEvents"][0]["payload"]["message"]
    assert session["messages"]["nodes"][-1]["content"] == "partial"  # kept, marked interrupted


async def test_select_model_is_sent_to_the_endpoint(fake: FakeOpenAI, gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data("mutation($s: ID!) { createSession(id: $s) { id } }", s=session_id)
    await gql.data(
        'mutation($s: ID!) { selectModel(sessionId: $s, model: "gpt-test-large") { model } }',
        s=session_id,
    )
    fake.script = [text("big answer")]
    await gql.data(SEND, s=session_id, c="hello")
    await finished(gql, session_id)
    assert fake.streamed[0]["model"] == "gpt-test-large"
