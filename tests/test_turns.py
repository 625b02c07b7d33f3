"""Chat turns end to end: a real server process (PostgreSQL, Redis), GraphQL over
HTTP for mutations and queries, a real WebSocket subscription for the events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import new_id, new_wallet
from tests.live import Collector, post, post_raw, wait_for_subscribers, ws_session
from tests.processes import ServerProcess

SEND = """
mutation($s: ID!, $c: String!, $t: ID, $u: JSON, $k: String) {
  sendMessage(sessionId: $s, content: $c, threadId: $t, userState: $u, publicKey: $k) {
    id isProcessing title userState publicKey
  }
}"""
EVENTS = """
subscription($id: ID!, $types: [String!]) {
  sessionEvents(sessionId: $id, types: $types) { cursor type data }
}"""
HISTORY = """
query($s: ID!) {
  session(id: $s) {
    title titleSource isProcessing
    messages(first: 50) { nodes { id role content toolCalls toolResults isInterrupted } }
    systemEvents { kind payload }
  }
}"""
INTERRUPT = "mutation($s: ID!) { interrupt(sessionId: $s) { isProcessing } }"


async def until_idle(
    server: ServerProcess, session_id: str, key: str | None = None
) -> dict[str, Any]:
    """Poll like a client until the assistant is done; returns the session."""
    for _ in range(200):
        session = (await post(server, HISTORY, key=key, s=session_id))["session"]
        if session and not session["isProcessing"]:
            return session  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"session {session_id} never stopped processing")


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["sessionEvents"]["type"] for e in events]


async def test_a_message_is_accepted_at_once_and_answered_live(server: ServerProcess) -> None:
    session_id = new_id()  # the first message creates the session
    async with ws_session(server) as ws:
        events = Collector(ws, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        sent = await post(
            server, SEND, s=session_id, c="  Hello there, how are you today my friend  "
        )
        assert sent["sendMessage"]["isProcessing"] is True
        assert sent["sendMessage"]["id"] == session_id
        while "processing_changed" not in kinds(events.results)[2:]:
            await events.wait_for(len(events.results) + 1)
        await events.stop()

    types = kinds(events.results)
    assert types[:2] == ["message_added", "processing_changed"]
    assert types[-3:] == ["message_added", "title_changed", "processing_changed"]
    assert set(types[2:-3]) == {"message_delta"}
    data = [e["sessionEvents"]["data"] for e in events.results]
    deltas = "".join(d["delta"] for d, t in zip(data, types, strict=True) if t == "message_delta")
    assert deltas == "You said: Hello there, how are you today my friend"
    assert data[0]["message"]["content"] == "Hello there, how are you today my friend"
    assert data[1] == {"is_processing": True}
    assert data[-3]["message"]["content"] == deltas
    assert data[-3]["message"]["id"] == data[2]["message_id"]  # deltas name the final message
    assert data[-2] == {"new_title": "Hello there, how are you today", "source": "generated"}
    assert data[-1] == {"is_processing": False}

    session = await until_idle(server, session_id)
    assert session["title"] == "Hello there, how are you today"
    assert session["titleSource"] == "GENERATED"
    assert [(m["role"], m["content"]) for m in session["messages"]["nodes"]] == [
        ("USER", "Hello there, how are you today my friend"),
        ("ASSISTANT", deltas),
    ]


async def test_tool_calls_publish_progress_and_results_and_are_stored(
    server: ServerProcess,
) -> None:
    session_id = new_id()
    await post(server, "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    async with ws_session(server) as ws:
        updates = Collector(
            ws,
            "subscription($id: ID!) { toolUpdate(sessionId: $id) { id callId toolName result } }",
            id=session_id,
        )
        completes = Collector(
            ws,
            "subscription($id: ID!) { toolComplete(sessionId: $id) { id callId toolName result } }",
            id=session_id,
        )
        await wait_for_subscribers(server, 2)
        await post(server, SEND, s=session_id, c='/tool calculator {"expression": "6 * (3 + 4)"}')
        [update] = await updates.wait_for(1)
        [complete] = await completes.wait_for(1)
        await updates.stop()
        await completes.stop()
    assert update["toolUpdate"]["toolName"] == "calculator"
    assert update["toolUpdate"]["result"]["status"] == "running"
    assert complete["toolComplete"]["result"] == {"expression": "6 * (3 + 4)", "value": 42}
    assert complete["toolComplete"]["id"] == update["toolUpdate"]["id"]
    assert complete["toolComplete"]["callId"] == update["toolUpdate"]["callId"]

    session = await until_idle(server, session_id)
    user, call, result, answer = session["messages"]["nodes"]
    assert user["role"] == "USER"
    assert call["role"] == "ASSISTANT"
    assert call["toolCalls"] == [
        {
            "call_id": complete["toolComplete"]["callId"],
            "tool_name": "calculator",
            "arguments": {"expression": "6 * (3 + 4)"},
        }
    ]
    assert result["role"] == "TOOL"
    assert result["toolResults"][0]["result"]["value"] == 42
    assert answer["role"] == "ASSISTANT"
    assert "42" in answer["content"]


async def test_parallel_tools_report_progress(server: ServerProcess, gamma_cli_key: str) -> None:
    session_id = new_id()
    key = gamma_cli_key
    await post(
        server, "mutation($id: ID!) { createSession(id: $id) { id } }", key=key, id=session_id
    )
    async with ws_session(server, init_payload={"appKey": key}) as ws:
        events = Collector(ws, EVENTS, id=session_id, types=["tool_update", "tool_complete"])
        await wait_for_subscribers(server, 1)
        await post(
            server,
            SEND,
            key=key,
            s=session_id,
            c='/tool progress {"steps": 3}\n/tool current_time {"timezone": "Europe/Paris"}',
        )
        while kinds(events.results).count("tool_complete") < 2:
            await events.wait_for(len(events.results) + 1)
        await events.stop()
    by_tool: dict[str, list[dict[str, Any]]] = {}
    for event in events.results:
        by_tool.setdefault(event["sessionEvents"]["data"]["tool_name"], []).append(
            event["sessionEvents"]
        )
    progress = [e["data"]["result"] for e in by_tool["progress"] if e["type"] == "tool_update"]
    assert [p["progress"] for p in progress if "progress" in p] == [
        {"step": 1, "of": 3},
        {"step": 2, "of": 3},
        {"step": 3, "of": 3},
    ]
    assert by_tool["progress"][-1]["data"]["result"] == {"done": 3}
    assert by_tool["current_time"][-1]["data"]["result"]["timezone"] == "Europe/Paris"
    session = await until_idle(server, session_id, key)
    tool_messages = [m for m in session["messages"]["nodes"] if m["role"] == "TOOL"]
    assert len(tool_messages) == 2


@pytest.mark.parametrize(
    ("command", "error"),
    [
        ("/tool explode {}", "RuntimeError: kaboom"),
        ("/tool sleepy {}", "timed out after 0.3s"),
        ('/tool calculator {"expr": "1"}', "invalid arguments"),
        ("/tool calculator [1, 2]", "arguments are not a JSON object"),
        ("/tool no_such_tool {}", "unknown tool 'no_such_tool'"),
        ('/tool calculator {"expression": "__import__(\'os\')"}', "unsupported element"),
        ("/tool wallet_address {}", "no wallet is bound"),
    ],
    ids=["raises", "timeout", "bad-arguments", "not-json", "unknown", "no-eval", "no-wallet"],
)
async def test_tool_failures_are_reported_not_raised(
    server: ServerProcess, gamma_cli_key: str, command: str, error: str
) -> None:
    session_id = new_id()
    key = gamma_cli_key
    await post(
        server, "mutation($id: ID!) { createSession(id: $id) { id } }", key=key, id=session_id
    )
    async with ws_session(server, init_payload={"appKey": key}) as ws:
        completes = Collector(
            ws, "subscription($id: ID!) { toolComplete(sessionId: $id) { result } }", id=session_id
        )
        await wait_for_subscribers(server, 1)
        await post(server, SEND, key=key, s=session_id, c=command)
        [complete] = await completes.wait_for(1)
        await completes.stop()
    assert error in complete["toolComplete"]["result"]["error"]
    session = await until_idle(server, session_id, key)
    roles = [m["role"] for m in session["messages"]["nodes"]]
    assert roles == ["USER", "ASSISTANT", "TOOL", "ASSISTANT"]  # the turn still answered
    assert error in session["messages"]["nodes"][2]["toolResults"][0]["error"]


async def test_wallet_tool_reads_the_bound_wallet(server: ServerProcess) -> None:
    session_id, wallet = new_id(), new_wallet()
    await post(server, SEND, s=session_id, c="/tool wallet_address {}", k=wallet)
    session = await until_idle(server, session_id)
    assert session["messages"]["nodes"][2]["toolResults"][0]["result"] == {"address": wallet}


async def test_concurrent_messages_are_answered_in_arrival_order(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    words = ["alpha", "bravo", "charlie", "delta"]
    results = await asyncio.gather(
        *(post(server, SEND, s=session_id, c=f"/slow 0.2 {w}") for w in words)
    )
    assert all(r["sendMessage"]["isProcessing"] for r in results)
    session = await until_idle(server, session_id)
    nodes = session["messages"]["nodes"]
    asked = [m["content"].split()[-1] for m in nodes if m["role"] == "USER"]
    answered = [m["content"].split()[-1] for m in nodes if m["role"] == "ASSISTANT"]
    assert sorted(asked) == sorted(words)  # nothing dropped
    assert answered == asked  # each answered, in the order they arrived


async def test_a_full_queue_is_refused_and_nothing_is_stored(
    server: ServerProcess, gamma_cli_key: str
) -> None:
    session_id, key = new_id(), gamma_cli_key
    await post(server, SEND, key=key, s=session_id, c="/slow 2 running")
    await asyncio.sleep(0.2)  # the first turn has started; the queue holds 2 (gamma)
    await post(server, SEND, key=key, s=session_id, c="queued one")
    await post(server, SEND, key=key, s=session_id, c="queued two")
    refused = await post_raw(server, SEND, key=key, s=session_id, c="one too many")
    assert refused["errors"][0]["extensions"]["code"] == "QUEUE_FULL"
    await post(server, INTERRUPT, key=key, s=session_id)
    session = await until_idle(server, session_id, key)
    contents = [m["content"] for m in session["messages"]["nodes"] if m["role"] == "USER"]
    assert contents == ["/slow 2 running", "queued one", "queued two"]


async def test_interrupt_keeps_partial_text_and_clears_the_queue(server: ServerProcess) -> None:
    session_id = new_id()
    long_text = " ".join(f"word{n}" for n in range(60))
    async with ws_session(server) as ws:
        deltas = Collector(ws, EVENTS, id=session_id, types=["message_delta"])
        await wait_for_subscribers(server, 1)
        await post(server, SEND, s=session_id, c=f"/slow 3 {long_text}")
        await post(server, SEND, s=session_id, c="never answered")
        await deltas.wait_for(2)
        mid = (
            await post(
                server,
                "query($s: ID!) { session(id: $s) { isProcessing "
                "streamingMessage { content isStreaming } } }",
                s=session_id,
            )
        )["session"]
        stopped = await post(server, INTERRUPT, s=session_id)
        await deltas.stop()
    assert mid["isProcessing"] is True
    assert mid["streamingMessage"]["isStreaming"] is True
    assert mid["streamingMessage"]["content"].startswith("You said: word0")
    assert stopped["interrupt"]["isProcessing"] is False

    session = (await post(server, HISTORY, s=session_id))["session"]
    nodes = session["messages"]["nodes"]
    assert [m["role"] for m in nodes] == ["USER", "USER", "ASSISTANT"]
    partial = nodes[2]
    assert partial["isInterrupted"] is True
    assert long_text.startswith(partial["content"].removeprefix("You said: "))
    assert len(partial["content"]) < len("You said: " + long_text)
    assert {
        "kind": "inline_call",
        "payload": {
            "type": "user_request",
            "kind": "Interruption",
            "payload": "Interrupted by user",
        },
    } in session["systemEvents"]
    await asyncio.sleep(0.5)
    after = (await post(server, HISTORY, s=session_id))["session"]
    assert len(after["messages"]["nodes"]) == 3  # the queued message got no answer

    idle = await post(server, INTERRUPT, s=session_id)  # an idle session: no-op
    assert idle["interrupt"]["isProcessing"] is False
    assert (await post(server, HISTORY, s=session_id))["session"]["systemEvents"] == session[
        "systemEvents"
    ]


async def test_model_failure_ends_the_turn_cleanly(server: ServerProcess) -> None:
    session_id = new_id()
    async with ws_session(server) as ws:
        notices = Collector(
            ws, "subscription($id: ID!) { systemNotice(sessionId: $id) { message } }", id=session_id
        )
        await wait_for_subscribers(server, 1)
        await post(server, SEND, s=session_id, c="/fail upstream exploded")
        [notice] = await notices.wait_for(1)
        await notices.stop()
    assert "upstream exploded" in notice["systemNotice"]["message"]
    session = await until_idle(server, session_id)
    assert [m["content"] for m in session["messages"]["nodes"]] == ["/fail upstream exploded"]
    assert session["systemEvents"][0]["kind"] == "error"
    assert "upstream exploded" in session["systemEvents"][0]["payload"]["message"]
    await post(server, SEND, s=session_id, c="still there?")  # the session stays usable
    session = await until_idle(server, session_id)
    assert session["messages"]["nodes"][-1]["content"] == "You said: still there?"


async def test_model_timeout_ends_the_turn(server: ServerProcess, gamma_cli_key: str) -> None:
    session_id = new_id()
    await post(server, SEND, key=gamma_cli_key, s=session_id, c="/hang")
    session = await until_idle(server, session_id, gamma_cli_key)  # turn_timeout = 1 s
    assert session["systemEvents"][0]["kind"] == "error"
    assert "within 1s" in session["systemEvents"][0]["payload"]["message"]


async def test_a_user_title_is_never_overwritten(server: ServerProcess) -> None:
    session_id = new_id()
    await post(
        server, 'mutation($id: ID!) { createSession(id: $id, title: "Mine") { id } }', id=session_id
    )
    await post(server, SEND, s=session_id, c="Please generate a title for this")
    session = await until_idle(server, session_id)
    assert session["title"] == "Mine"
    assert session["titleSource"] == "USER"


async def test_select_model(server: ServerProcess, alpha_cli_key: str) -> None:
    session_id, key = new_id(), alpha_cli_key
    await post(
        server, "mutation($id: ID!) { createSession(id: $id) { id } }", key=key, id=session_id
    )
    models = await post(server, "{ models }", key=key)
    assert models["models"] == ["builtin", "builtin-large"]
    chosen = await post(
        server,
        'mutation($s: ID!) { selectModel(sessionId: $s, model: "builtin-large") { model } }',
        key=key,
        s=session_id,
    )
    assert chosen["selectModel"]["model"] == "builtin-large"
    refused = await post_raw(
        server,
        'mutation($s: ID!) { selectModel(sessionId: $s, model: "gpt-9") { model } }',
        key=key,
        s=session_id,
    )
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert refused["errors"][0]["message"].startswith("model:")


@pytest.mark.parametrize(
    "content", ["", "   \n ", "x" * (32 * 1024 + 1)], ids=["empty", "blank", "too-big"]
)
async def test_bad_content_is_refused(server: ServerProcess, content: str) -> None:
    session_id = new_id()
    refused = await post_raw(server, SEND, s=session_id, c=content)
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert refused["errors"][0]["message"].startswith("content:")
    assert (await post(server, HISTORY, s=session_id))["session"] is None  # nothing created


async def test_send_with_user_state_wallet_and_thread(server: ServerProcess) -> None:
    session_id, wallet = new_id(), new_wallet()
    state = {"connection": {"is_connected": True}, "evm": {"chain_id": 1}}
    sent = await post(server, SEND, s=session_id, c="hi", u=state, k=wallet)
    assert sent["sendMessage"]["userState"] == state
    assert sent["sendMessage"]["publicKey"] == wallet
    await until_idle(server, session_id)
    thread = await post(
        server, "mutation($s: ID!) { createThread(sessionId: $s) { id } }", s=session_id
    )
    thread_id = thread["createThread"]["id"]
    await post(server, SEND, s=session_id, c="in a side thread", t=thread_id)
    await until_idle(server, session_id)
    side = await post(
        server, "query($t: ID!) { messages(threadId: $t) { nodes { role content } } }", t=thread_id
    )
    assert side["messages"]["nodes"] == [
        {"role": "USER", "content": "in a side thread"},
        {"role": "ASSISTANT", "content": "You said: in a side thread"},
    ]
