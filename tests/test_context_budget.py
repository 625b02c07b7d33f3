"""A 2,000-message session against the local OpenAI-wire fake: the prompt stays
within the model's context budget, keeps the newest messages whole and every tool
call with its result, and carries the stored running summary, which is computed
once per range (later turns reuse it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from apps_config import AppConfig, ModelConfig
from runtime.agents.protocol import SUMMARY_PROMPT, estimate_tokens
from runtime.core import Runtime
from runtime.records import MessageRecord, Role
from runtime.store import NewMessage
from runtime.turns.context import _fit, _units
from settings import Settings
from tests.conftest import GraphQLClient, new_id, serving
from tests.fake_openai import FakeOpenAI, text
from tests.fake_openai import fake as fake  # a fixture
from tests.waiting import first_read

BUDGET = 2_000
ROOM = BUDGET - BUDGET // 4  # what the prompt may take; the rest is for the answer
HISTORY = 2_000
SEND = "mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id } }"
READ = """query($s: ID!) {
  session(id: $s) {
    isProcessing
    contextSummary { content upToSeq }
    turns { promptMessages promptTokens }
  }
}"""


class Summaries:
    """Answers the backend's summary requests, counting them."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []

    def __call__(self, body: dict[str, Any]) -> str:
        if body["messages"][0]["content"] != SUMMARY_PROMPT:
            return "A title"
        self.requests.append(body["messages"])
        return f"summary {len(self.requests)}"


@pytest.fixture
async def served(
    fake: FakeOpenAI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Runtime, GraphQLClient, httpx.AsyncClient]]:
    monkeypatch.setenv("CONFAB_TEST_OPENAI_KEY", "sk-test-123")
    model = ModelConfig(
        backend="openai",
        models=("gpt-test",),
        system_prompt="Be brief.",
        options={
            "base_url": f"http://127.0.0.1:{fake.port}/v1",
            "api_key_env": "CONFAB_TEST_OPENAI_KEY",
            "context_tokens": BUDGET,
        },
    )
    apps = {"default": AppConfig(name="default", display_name="Default", model=model)}
    async with serving(settings.with_overrides(apps=apps)) as (application, http):
        yield application.state.runtime, GraphQLClient(http), http


async def seed(runtime: Runtime, session_id: UUID) -> None:
    """2,000 messages; near the end, two tool exchanges (one with two parallel calls)."""
    store = runtime.store
    for n in range(1, HISTORY + 1):
        role = Role.USER if n % 2 else Role.ASSISTANT
        message = NewMessage(session_id, session_id, role, f"message {n}: " + "word " * (n % 7))
        if n in (HISTORY - 40, HISTORY - 8):
            calls = [
                {"call_id": f"c{n}-{i}", "tool_name": "lookup", "arguments": {"q": n}}
                for i in range(1 + (n == HISTORY - 8))
            ]
            message = NewMessage(session_id, session_id, Role.ASSISTANT, "", tool_calls=calls)
        elif n in (HISTORY - 39, HISTORY - 7, HISTORY - 6):
            first = HISTORY - 40 if n == HISTORY - 39 else HISTORY - 8
            call = f"c{first}-{0 if n != HISTORY - 6 else 1}"
            message = NewMessage(
                session_id,
                session_id,
                Role.TOOL,
                '{"result": "found"}',
                tool_results=[{"call_id": call, "tool_name": "lookup", "result": "found"}],
            )
        await store.append_message(message)


async def answered(gql: GraphQLClient, fake: FakeOpenAI, session_id: str, text_: str) -> None:
    fake.script.append(text("fine"))
    await gql.data(SEND, s=session_id, c=text_)
    await first_read(
        lambda: gql.data(READ, s=session_id),
        lambda read: not read["session"]["isProcessing"],
        "the turn's end",
    )


def assert_tool_exchanges_whole(messages: list[dict[str, Any]]) -> None:
    asked: set[str] = set()
    answered_calls: set[str] = set()
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls"):
            asked |= {call["id"] for call in message["tool_calls"]}
        if message["role"] == "tool":
            assert message["tool_call_id"] in asked, f"a result without its call: {message}"
            answered_calls.add(message["tool_call_id"])
    assert asked == answered_calls, "a call without its result"


async def test_a_long_session_fits_the_budget_with_its_summary(
    served: tuple[Runtime, GraphQLClient, httpx.AsyncClient], fake: FakeOpenAI
) -> None:
    runtime, gql, http = served
    summaries = Summaries()
    fake.complete = summaries
    session_id = new_id()
    await gql.data("mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    await seed(runtime, UUID(session_id))

    await answered(gql, fake, session_id, "What did we decide?")
    prompt = fake.streamed[-1]["messages"]
    assert sum(estimate_tokens(m) for m in prompt) <= ROOM
    assert prompt[-1] == {"role": "user", "content": "What did we decide?"}
    assert_tool_exchanges_whole(prompt)
    assert any(m["role"] == "tool" for m in prompt), "the newest tool exchange is in view"
    # The newest messages, whole and in order, right up to the question.
    assert prompt[-2] == {"role": "assistant", "content": "message 2000: " + "word " * 5}
    assert prompt[-3] == {"role": "user", "content": "message 1999: " + "word " * 4}

    # The stored summary covers exactly what the window left out, and is in the prompt.
    session = (await gql.data(READ, s=session_id))["session"]
    summary = session["contextSummary"]
    assert summary["content"] == f"summary {len(summaries.requests)}"
    assert (
        f"Summary of the earlier part of this conversation:\n{summary['content']}"
        in (prompt[0]["content"])
    )
    first_kept = prompt[1]["content"]
    assert first_kept.startswith(f"message {summary['upToSeq'] + 1}: ")
    # Every message went into some summary request once, in order, each within budget.
    summarized = [m["content"] for request in summaries.requests for m in request[1:]]
    assert len(summaries.requests) > 1
    assert all(sum(estimate_tokens(m) for m in r) <= BUDGET for r in summaries.requests)
    assert summarized[0].startswith("Summary so far: ") is False
    assert "message 1: " in summarized[0]
    assert f"message {summary['upToSeq']}: " in summarized[-1]

    # Later turns reuse it: no new summary while the window fits.
    made = len(summaries.requests)
    await answered(gql, fake, session_id, "And then?")
    await answered(gql, fake, session_id, "Anything else?")
    assert len(summaries.requests) == made
    latest = fake.streamed[-1]["messages"]
    assert latest[0] == prompt[0]  # the same summary, carried again
    assert sum(estimate_tokens(m) for m in latest) <= ROOM

    # What went to the model, per turn, in GraphQL and in the metrics.
    turns = (await gql.data(READ, s=session_id))["session"]["turns"]
    assert [t["promptMessages"] for t in turns] == [len(r["messages"]) for r in fake.streamed[-3:]]
    assert turns[-1]["promptTokens"] == sum(estimate_tokens(m) for m in latest)
    scraped = (await http.get("/metrics")).text
    assert 'confab_turn_prompt_tokens_count{backend="openai"} 3.0' in scraped


def test_a_window_edge_inside_a_tool_exchange_leaves_the_exchange_out() -> None:
    """`_fit` keeps whole units: an assistant message with parallel calls and both
    results is one unit, dropped whole when it does not fit; a result whose call is
    out of view is never a unit of its own."""
    thread = uuid4()

    def record(seq: int, role: Role, **fields: Any) -> MessageRecord:
        return MessageRecord(
            id=uuid4(),
            session_id=thread,
            thread_id=thread,
            seq=seq,
            role=role,
            content=fields.pop("content", f"m{seq}"),
            tool_calls=fields.pop("tool_calls", None),
            tool_results=fields.pop("tool_results", None),
            is_interrupted=False,
            created_at=datetime.now(UTC),
        )

    calls = [{"call_id": f"c{i}", "tool_name": "t", "arguments": {}} for i in range(2)]
    history = [
        record(1, Role.TOOL, tool_results=[{"call_id": "gone", "tool_name": "t"}]),
        record(2, Role.USER),
        record(3, Role.ASSISTANT, content="", tool_calls=calls),
        record(4, Role.TOOL, content="r0", tool_results=[{"call_id": "c0", "tool_name": "t"}]),
        record(5, Role.TOOL, content="r1", tool_results=[{"call_id": "c1", "tool_name": "t"}]),
        record(6, Role.ASSISTANT, content="done"),
        record(7, Role.USER, content="next?"),
    ]
    units = _units(history, history[-1], estimate_tokens)
    assert [[r.seq for r in unit.records] for unit in units] == [[2], [3, 4, 5], [6], [7]]
    exchange = units[1].tokens
    newest = units[2].tokens + units[3].tokens
    # Room for the two newest and most, not all, of the exchange: it goes whole.
    assert [u.first_seq for u in _fit(units, newest + exchange - 1)] == [6, 7]
    assert [u.first_seq for u in _fit(units, newest + exchange)] == [3, 6, 7]
    # The question is kept even when nothing fits.
    assert [u.first_seq for u in _fit(units, 0)] == [7]
