"""Wallet memory end to end with the builtin backend, over GraphQL: a fact a wallet
states in one session reaches the model in its next session (the builtin backend's
`/context` answers with what it was given), never in another app's, never after
`forgetWallet`; the user lists and forgets memories; they go with their session
unless the app keeps them, and are exported with it. Plus the agent state a tool or
backend writes (`Session.state`), and what each turn sent the model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest

from apps_config import AppConfig, ModelConfig
from runtime import keys
from runtime.core import Runtime
from runtime.exports import export_session
from runtime.validation import JSON_OBJECT_MAX_BYTES
from settings import Settings
from tests.conftest import GraphQLClient, new_id, new_wallet, serving
from tests.waiting import first_read

SEND = """mutation($s: ID!, $c: String!, $k: String) {
  sendMessage(sessionId: $s, content: $c, publicKey: $k) { id }
}"""
READ = """query($s: ID!) {
  session(id: $s) {
    isProcessing state
    messages(last: 20) { nodes { role content toolResults } }
    systemEvents { kind payload }
    turns { status promptMessages promptTokens }
  }
}"""
MEMORIES = "query($k: String!) { walletMemory(publicKey: $k) { id content sourceSessionId } }"
FORGET = "mutation($id: ID!) { forgetMemory(id: $id) }"
FORGET_WALLET = "mutation($k: String!) { forgetWallet(publicKey: $k) }"
DELETE = "mutation($id: ID!) { deleteSession(id: $id) { id } }"

TOOLS = {"note": "tests.sample_tools:note", "hoard": "tests.sample_tools:hoard"}


def app(name: str, **options: Any) -> AppConfig:
    return AppConfig(
        name=name, display_name=name, model=ModelConfig(), custom_tools=TOOLS, **options
    )


APPS = {
    "default": app("default"),
    "recall": app("recall", memory=True),
    "elsewhere": app("elsewhere", memory=True),
    "keeper": app("keeper", memory=True, keep_memories=True),
}


def idle(read: dict[str, Any]) -> bool:
    return not read["session"]["isProcessing"]


class Clients:
    def __init__(self, runtime: Runtime, by_app: dict[str, GraphQLClient]) -> None:
        self.runtime = runtime
        self.by_app = by_app

    def __getitem__(self, app_name: str) -> GraphQLClient:
        return self.by_app[app_name]

    async def turn(self, app_name: str, session_id: str, text: str, wallet: str | None) -> str:
        """Send, wait until answered and its memory (if any) stored; the answer."""
        gql = self.by_app[app_name]
        await gql.data(SEND, s=session_id, c=text, k=wallet)
        read = await first_read(
            lambda: gql.data(READ, s=session_id), idle, f"session {session_id}'s answer"
        )
        session = read["session"]
        await self.runtime.memories.settled()
        answer: str = session["messages"]["nodes"][-1]["content"]
        return answer


@pytest.fixture
async def clients(settings: Settings) -> AsyncIterator[Clients]:
    async with serving(settings.with_overrides(apps=APPS)) as (application, http):
        by_app = {}
        for name in APPS:
            clear, _ = await keys.create_key([name], "memory tests")
            by_app[name] = GraphQLClient(http, clear)
        yield Clients(application.state.runtime, by_app)


async def test_a_wallet_is_remembered_in_its_next_session_of_the_app(clients: Clients) -> None:
    wallet, first, second = new_wallet(), new_id(), new_id()
    await clients.turn("recall", first, "My favourite colour is teal", wallet)
    listed = (await clients["recall"].data(MEMORIES, k=wallet))["walletMemory"]
    assert [(m["content"], m["sourceSessionId"]) for m in listed] == [
        ("User said: My favourite colour is teal", first)
    ]
    answer = await clients.turn("recall", second, "/context", wallet)
    assert "favourite colour is teal" in answer
    # Another app of the same wallet: nothing of it, not even through its listing.
    elsewhere = await clients.turn("elsewhere", new_id(), "/context", wallet)
    assert "teal" not in elsewhere
    assert (await clients["elsewhere"].data(MEMORIES, k=wallet))["walletMemory"] == []
    # Unbound sessions neither remember nor recall.
    await clients.turn("recall", new_id(), "I live in Lisbon", None)
    assert "teal" not in await clients.turn("recall", new_id(), "/context", None)
    assert len((await clients["recall"].data(MEMORIES, k=wallet))["walletMemory"]) == 1


async def test_forgetting_a_wallet_and_a_memory(clients: Clients) -> None:
    wallet = new_wallet()
    await clients.turn("recall", new_id(), "I am allergic to peanuts", wallet)
    await clients.turn("recall", new_id(), "My dog is called Rex", wallet)
    listed = (await clients["recall"].data(MEMORIES, k=wallet))["walletMemory"]
    assert [m["content"] for m in listed] == [
        "User said: My dog is called Rex",
        "User said: I am allergic to peanuts",
    ]
    # Another app's key cannot reach it: reported exactly like a missing memory.
    error = await clients["elsewhere"].error(FORGET, id=listed[0]["id"])
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert len((await clients["recall"].data(MEMORIES, k=wallet))["walletMemory"]) == 2
    assert (await clients["recall"].data(FORGET, id=listed[0]["id"]))["forgetMemory"] is True
    answer = await clients.turn("recall", new_id(), "/context", wallet)
    assert "peanuts" in answer
    assert "Rex" not in answer
    # `/context` left no memory (commands are not facts); one remains to forget.
    assert (await clients["recall"].data(FORGET_WALLET, k=wallet))["forgetWallet"] == 1
    assert "peanuts" not in await clients.turn("recall", new_id(), "/context", wallet)
    error = await clients["recall"].error(FORGET_WALLET, k=wallet)
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert "no memories of wallet" in error["message"]


async def test_bad_memory_arguments_are_clear_errors(clients: Clients) -> None:
    error = await clients["recall"].error(MEMORIES, k="not-a-wallet")
    assert error["extensions"]["code"] == "INVALID_INPUT", error
    assert "publicKey" in error["message"]
    error = await clients["recall"].error(FORGET, id="nope")
    assert error["extensions"]["code"] == "INVALID_INPUT", error
    error = await clients["recall"].error(FORGET, id=new_id())
    assert error["extensions"]["code"] == "NOT_FOUND", error


async def test_memories_go_with_their_session_unless_the_app_keeps_them(
    clients: Clients,
) -> None:
    wallet, gone, kept = new_wallet(), new_id(), new_id()
    await clients.turn("recall", gone, "I prefer tea", wallet)
    await clients.turn("keeper", kept, "I prefer coffee", wallet)
    record = await clients.runtime.store.get_session(UUID(gone))
    assert record is not None
    exported = await export_session(clients.runtime.store, record)
    assert [m["content"] for m in exported["memories"]] == ["User said: I prefer tea"]
    await clients["recall"].data(DELETE, id=gone)
    await clients["keeper"].data(DELETE, id=kept)
    assert (await clients["recall"].data(MEMORIES, k=wallet))["walletMemory"] == []
    kept_ones = (await clients["keeper"].data(MEMORIES, k=wallet))["walletMemory"]
    assert [(m["content"], m["sourceSessionId"]) for m in kept_ones] == [
        ("User said: I prefer coffee", kept)
    ]


async def test_tools_and_the_backend_keep_agent_state_across_turns(clients: Clients) -> None:
    session_id = new_id()
    gql = clients["default"]
    await clients.turn("default", session_id, '/tool note {"text": "first"}', None)
    await clients.turn("default", session_id, '/tool note {"text": "second"}', None)
    session = (await gql.data(READ, s=session_id))["session"]
    assert session["state"] == {"notes": ["first", "second"]}
    answer = await clients.turn("default", session_id, "/context", None)
    assert '"notes": ["first", "second"]' in answer  # the backend reads it
    await clients.turn("default", session_id, '/state {"step": 3}', None)
    assert (await gql.data(READ, s=session_id))["session"]["state"] == {"step": 3}
    # Each saved change was announced to live UIs (the session's event log).
    log = await clients.runtime.events.read_log(UUID(session_id), 0)
    changes = [e.data["changes"] for e in log.events if e.type == "session_updated"]
    assert [c["state"] for c in changes if "state" in c] == [
        {"notes": ["first"]},
        {"notes": ["first", "second"]},
        {"step": 3},
    ]
    turns = (await gql.data(READ, s=session_id))["session"]["turns"]
    assert [t["status"] for t in turns] == ["done"] * 4
    assert all(t["promptMessages"] >= 2 and t["promptTokens"] > 0 for t in turns)
    assert turns[-1]["promptMessages"] > turns[0]["promptMessages"]


async def test_a_state_over_the_limit_is_refused_and_nothing_changes(clients: Clients) -> None:
    session_id = new_id()
    gql = clients["default"]
    await clients.turn("default", session_id, '/state {"step": 1}', None)
    too_big = JSON_OBJECT_MAX_BYTES + 1
    await clients.turn("default", session_id, f'/tool hoard {{"bytes": {too_big}}}', None)
    session = (await gql.data(READ, s=session_id))["session"]
    assert session["state"] == {"step": 1}
    result = next(m for m in session["messages"]["nodes"] if m["role"] == "TOOL")
    assert "state not saved" in result["toolResults"][0]["error"]
    assert f"at most {JSON_OBJECT_MAX_BYTES} bytes" in result["toolResults"][0]["error"]
    # The backend's write of something that is not an object: a notice, state kept.
    await clients.turn("default", session_id, "/state [1, 2]", None)
    session = (await gql.data(READ, s=session_id))["session"]
    assert session["state"] == {"step": 1}
    notices = [e["payload"] for e in session["systemEvents"] if e["kind"] == "error"]
    assert any("state was not saved" in str(n) for n in notices), session["systemEvents"]
    log = await clients.runtime.events.read_log(UUID(session_id), 0)
    states = [e.data["changes"].get("state") for e in log.events if e.type == "session_updated"]
    assert [state for state in states if state is not None] == [{"step": 1}]
