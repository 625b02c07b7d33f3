"""The REST compatibility layer, black box, from the contract (shared/spec/rest-compat.md):
state snapshots, system messages and events.

One real server process (PostgreSQL, Redis) called over HTTP the way a legacy client
calls it: the message in the query string, the session id only in `X-Session-Id`,
the app key in `AOMI-APP-KEY` or `X-API-Key`, the app chosen with `?app=` or
`?namespace=`.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import new_id, new_wallet
from tests.rest_client import (
    assert_error,
    assert_legacy_message,
    chat,
    chat_and_wait,
    create_session,
    headers,
    ok,
    seconds_from_now,
    state,
    until_idle,
    until_idle_without_snapshots,
    updates,
)

# -- GET /api/state --------------------------------------------------------------------


async def test_state_renders_legacy_messages(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    snapshot = await chat_and_wait(http, session_id, "hello legacy")
    assert snapshot["is_processing"] is False
    assert [(m["sender"], m["content"], m["tool_result"]) for m in snapshot["messages"]] == [
        ("user", "hello legacy", None),
        ("agent", "You said: hello legacy", None),
    ]
    for message in snapshot["messages"]:
        assert_legacy_message(message)
        assert message["is_streaming"] is False
        assert seconds_from_now(message["timestamp"]) < 120  # UTC, not local time


async def test_state_renders_tool_results(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    command = '/tool calculator {"expression": "6*7"}'
    snapshot = await chat_and_wait(http, session_id, command)
    for message in snapshot["messages"]:
        assert_legacy_message(message)
    assert snapshot["messages"][0]["sender"] == "user"
    assert snapshot["messages"][0]["content"] == command
    tools = [m for m in snapshot["messages"] if m["tool_result"] is not None]
    assert len(tools) == 1, snapshot["messages"]
    [tool] = tools
    assert tool["sender"] == "agent"
    assert tool["content"] == ""
    assert isinstance(tool["tool_result"], list)
    assert len(tool["tool_result"]) == 2
    assert tool["tool_result"][0] == "calculator"
    assert isinstance(tool["tool_result"][1], str)
    assert "42" in tool["tool_result"][1]
    answer = snapshot["messages"][-1]
    assert answer["sender"] == "agent"
    assert answer["tool_result"] is None
    assert "42" in answer["content"]


async def test_state_shows_processing_and_the_streaming_message(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    long_text = " ".join(f"word{n}" for n in range(40))
    ok(await chat(http, session_id, f"/slow 3 {long_text}"))
    await asyncio.sleep(0.8)
    mid = await state(http, session_id)
    assert mid["is_processing"] is True
    streaming = mid["messages"][-1]
    assert_legacy_message(streaming)
    assert streaming["sender"] == "agent"
    assert streaming["is_streaming"] is True
    assert streaming["content"].startswith("You said: word0")
    ok(await http.post("/api/interrupt", headers=headers(session_id)))


async def test_state_of_an_unknown_session_is_empty_and_creates_nothing(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    snapshot = await state(http, session_id)
    assert snapshot["messages"] == []
    assert snapshot["system_events"] == []
    assert snapshot["title"] is None
    assert snapshot["is_processing"] is False
    assert_error(await http.get(f"/api/sessions/{session_id}"), 404)
    # asking with user_state does not create it either
    user_state = json.dumps({"address": new_wallet(), "chain_id": 1})
    with_state = ok(
        await http.get("/api/state", params={"user_state": user_state}, headers=headers(session_id))
    )
    assert with_state["title"] is None
    assert_error(await http.get(f"/api/sessions/{session_id}"), 404)


@pytest.mark.parametrize("session_id", [None, "not a session id"], ids=["missing", "bad"])
async def test_state_needs_a_valid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await http.get("/api/state", headers=headers(session_id)), 400)


@pytest.mark.parametrize("via", ["chat", "state"])
async def test_nested_user_state_is_returned_nested_and_flat(
    http: httpx.AsyncClient, via: str
) -> None:
    session_id, wallet = new_id(), new_wallet()
    sent = {"connection": {"is_connected": True}, "evm": {"address": wallet, "chain_id": 1}}
    if via == "chat":
        returned = ok(await chat(http, session_id, "hi", user_state=json.dumps(sent)))
    else:
        await create_session(http, session_id)
        returned = ok(
            await http.get(
                "/api/state", params={"user_state": json.dumps(sent)}, headers=headers(session_id)
            )
        )
    for snapshot in (returned, (await until_idle(http, session_id))[0]):
        user_state = snapshot["user_state"]
        assert user_state["connection"]["is_connected"] is True
        assert user_state["evm"]["address"] == wallet
        assert user_state["evm"]["chain_id"] == 1
        assert user_state["address"] == wallet
        assert user_state["chain_id"] == 1
        assert user_state["is_connected"] is True


@pytest.mark.parametrize("via", ["chat", "state"])
async def test_flat_user_state_is_returned_nested_and_flat(
    http: httpx.AsyncClient, via: str
) -> None:
    session_id, wallet = new_id(), new_wallet()
    sent = {
        "address": wallet,
        "chainId": 137,
        "isConnected": True,
        "ens_name": "vitalik.eth",
        "ext": {"theme": "dark", "n": 3},
    }
    if via == "chat":
        returned = ok(await chat(http, session_id, "hi", user_state=json.dumps(sent)))
    else:
        await create_session(http, session_id)
        returned = ok(
            await http.get(
                "/api/state", params={"user_state": json.dumps(sent)}, headers=headers(session_id)
            )
        )
    for snapshot in (returned, (await until_idle(http, session_id))[0]):
        user_state = snapshot["user_state"]
        assert user_state["connection"]["is_connected"] is True
        assert user_state["evm"]["address"] == wallet
        assert user_state["evm"]["chain_id"] == 137
        assert user_state["address"] == wallet
        assert user_state["chain_id"] == 137
        assert user_state["is_connected"] is True
        assert user_state["ens_name"] == "vitalik.eth"
        assert user_state["ext"] == {"theme": "dark", "n": 3}


async def test_flat_user_state_with_snake_case_keys(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    sent = {"address": wallet, "chain_id": 10, "is_connected": False}
    snapshot = ok(await chat(http, session_id, "hi", user_state=json.dumps(sent)))
    user_state = snapshot["user_state"]
    assert user_state["connection"]["is_connected"] is False
    assert user_state["evm"]["address"] == wallet
    assert user_state["evm"]["chain_id"] == 10
    assert (user_state["address"], user_state["chain_id"], user_state["is_connected"]) == (
        wallet,
        10,
        False,
    )
    await until_idle(http, session_id)


@pytest.mark.parametrize("via", ["chat", "state"])
async def test_invalid_user_state_json_is_400(http: httpx.AsyncClient, via: str) -> None:
    session_id = new_id()
    params = {"user_state": "{not json"}
    if via == "chat":
        response = await http.post(
            "/api/chat", params={"message": "hi", **params}, headers=headers(session_id)
        )
    else:
        await create_session(http, session_id)
        response = await http.get("/api/state", params=params, headers=headers(session_id))
    assert_error(response, 400)


async def test_system_events_carry_only_what_is_new_and_events_keeps_history(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    sent = headers(session_id)

    first = ok(await chat(http, session_id, "/fail boom one"))
    _, seen = await until_idle(http, session_id)
    seen = first["system_events"] + seen
    errors = [e for e in seen if isinstance(e, dict) and "SystemError" in e]
    assert len(errors) == 1, seen  # delivered once, by the snapshot after it happened
    assert "boom one" in errors[0]["SystemError"]

    assert (await state(http, session_id))["system_events"] == []  # the cursor moved past it

    history = ok(await http.get("/api/events", headers=sent))
    assert any(e.get("SystemError", "").find("boom one") >= 0 for e in history), history
    assert ok(await http.get("/api/events", headers=sent)) == history  # it does not consume

    second = ok(await chat(http, session_id, "/fail boom two"))
    _, seen = await until_idle(http, session_id)
    seen = second["system_events"] + seen
    new_errors = [e["SystemError"] for e in seen if isinstance(e, dict) and "SystemError" in e]
    assert len(new_errors) == 1, seen
    assert "boom two" in new_errors[0]

    history = ok(await http.get("/api/events", headers=sent))
    all_errors = [e["SystemError"] for e in history if isinstance(e, dict) and "SystemError" in e]
    assert len(all_errors) == 2, history
    assert "boom one" in all_errors[0]  # oldest first
    assert "boom two" in all_errors[1]

    # reading /api/events first does not consume what the next snapshot carries
    third = ok(await chat(http, session_id, "/fail boom three"))
    await until_idle_without_snapshots(http, session_id)
    history = ok(await http.get("/api/events", headers=sent))
    assert "boom three" in json.dumps(history[-1]), history
    assert ok(await http.get("/api/events", headers=sent)) == history
    snapshot = await state(http, session_id)
    carried = third["system_events"] + snapshot["system_events"]
    pending = [e["SystemError"] for e in carried if "SystemError" in e]
    assert len(pending) == 1, (third["system_events"], snapshot["system_events"])
    assert "boom three" in pending[0]


# -- POST /api/system --------------------------------------------------------------------


async def test_system_message_is_echoed_and_stored(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    response = await http.post(
        "/api/system", params={"message": "wallet connected"}, headers=headers(session_id)
    )
    answered = ok(response)["res"]
    assert_legacy_message(answered)
    assert (answered["sender"], answered["content"]) == ("system", "wallet connected")
    snapshot = await state(http, session_id)
    stored = [m for m in snapshot["messages"] if m["sender"] == "system"]
    assert stored == [answered]
    assert stored[0]["tool_result"] is None
    # plain text is a system notice too
    assert {"SystemNotice": "wallet connected"} in snapshot["system_events"]
    assert {"SystemNotice": "wallet connected"} in ok(
        await http.get("/api/events", headers=headers(session_id))
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [("/api/system", {"message": "hi"}), ("/api/control/model", {"rig": "builtin"})],
    ids=["system", "control-model"],
)
@pytest.mark.parametrize("session_id", [None, "not a session id"], ids=["missing", "bad"])
async def test_session_header_is_required(
    http: httpx.AsyncClient, path: str, params: dict[str, str], session_id: str | None
) -> None:
    assert_error(await http.post(path, params=params, headers=headers(session_id)), 400)


async def test_system_needs_a_message(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    assert_error(await http.post("/api/system", headers=headers(session_id)), 400)


async def test_system_json_with_a_type_is_published_on_updates(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    message = json.dumps({"type": "wallet_tx_request", "payload": {"to": "0xabc123", "value": 7}})
    async with updates(http, session_id) as stream:
        response = await http.post(
            "/api/system", params={"message": message}, headers=headers(session_id)
        )
        assert "res" in ok(response)
        [event] = await stream.wait_for_type("wallet_tx_request")
    assert event["session_id"] == session_id
    assert "0xabc123" in json.dumps(event)  # the payload travels with it
    snapshot = await state(http, session_id)
    assert any(
        m["sender"] == "system" and "wallet_tx_request" in m["content"]
        for m in snapshot["messages"]
    ), snapshot["messages"]


# -- GET /api/events ----------------------------------------------------------------------


async def test_events_count(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    await chat_and_wait(http, session_id, "/fail first failure")
    await chat_and_wait(http, session_id, "/fail second failure")
    everything = ok(await http.get("/api/events", headers=sent))
    assert isinstance(everything, list)
    assert len(everything) >= 2
    one = ok(await http.get("/api/events", params={"count": "1"}, headers=sent))
    assert isinstance(one, list)
    assert len(one) == 1
    assert one[0] in everything


@pytest.mark.parametrize("session_id", [None, "not a session id"], ids=["missing", "bad"])
async def test_events_needs_a_valid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await http.get("/api/events", headers=headers(session_id)), 400)
