"""The REST compatibility layer, black box, from the contract (shared/spec/rest-compat.md):
chat and interrupt.

One real server process (PostgreSQL, Redis) called over HTTP the way a legacy client
calls it: the message in the query string, the session id only in `X-Session-Id`,
the app key in `AOMI-APP-KEY` or `X-API-Key`, the app chosen with `?app=` or
`?namespace=`.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import new_id
from tests.rest_client import (
    INTERRUPTION,
    MAX_MESSAGE,
    NEW_CHAT,
    assert_error,
    assert_legacy_message,
    chat,
    chat_and_wait,
    headers,
    ok,
    senders,
    state,
    until_idle,
    until_streaming,
)

# -- POST /api/chat -----------------------------------------------------------------


async def test_chat_creates_the_session_and_returns_a_processing_snapshot(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    assert_error(await http.get(f"/api/sessions/{session_id}"), 404)
    snapshot = ok(await chat(http, session_id, "/slow 1 are you there", client_id="legacy-web"))
    assert snapshot["is_processing"] is True
    assert {"messages", "system_events", "title", "is_processing", "user_state"} <= snapshot.keys()
    assert snapshot["title"] == NEW_CHAT
    assert snapshot["user_state"] is None
    user = snapshot["messages"][0]
    assert_legacy_message(user)
    assert (user["sender"], user["content"]) == ("user", "/slow 1 are you there")
    assert ok(await http.get(f"/api/sessions/{session_id}"))["session_id"] == session_id

    mid = ok(
        await http.get(
            "/api/state", params={"client_id": "legacy-web"}, headers=headers(session_id)
        )
    )
    assert mid["messages"][0]["content"] == "/slow 1 are you there"
    done, _ = await until_idle(http, session_id)
    assert [(m["sender"], m["content"]) for m in done["messages"]] == [
        ("user", "/slow 1 are you there"),
        ("agent", "You said: are you there"),
    ]


@pytest.mark.parametrize("field", ["message", "text"])
async def test_chat_accepts_a_json_body_when_the_query_has_none(
    http: httpx.AsyncClient, field: str
) -> None:
    session_id = new_id()
    response = await http.post(
        "/api/chat", json={field: f"sent in the {field} field"}, headers=headers(session_id)
    )
    assert ok(response)["messages"][0]["content"] == f"sent in the {field} field"
    done, _ = await until_idle(http, session_id)
    assert done["messages"][-1]["content"] == f"You said: sent in the {field} field"


@pytest.mark.parametrize(
    "params", [{}, {"message": ""}, {"message": "   \n "}], ids=["missing", "empty", "blank"]
)
async def test_chat_needs_a_message(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    session_id = new_id()
    assert_error(await http.post("/api/chat", params=params, headers=headers(session_id)), 400)


@pytest.mark.parametrize("session_id", [None, "not a session id"], ids=["missing", "bad"])
async def test_chat_needs_a_valid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    response = await http.post("/api/chat", params={"message": "hi"}, headers=headers(session_id))
    assert_error(response, 400)


async def test_chat_accepts_exactly_32_kib(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    snapshot = ok(await chat(http, session_id, "x" * MAX_MESSAGE))
    assert snapshot["messages"][0]["content"] == "x" * MAX_MESSAGE
    await until_idle(http, session_id)


@pytest.mark.parametrize("where", ["query", "body"])
async def test_chat_refuses_more_than_32_kib(http: httpx.AsyncClient, where: str) -> None:
    session_id = new_id()
    message = "x" * (MAX_MESSAGE + 1)
    if where == "query":
        response = await chat(http, session_id, message)
    else:
        response = await http.post(
            "/api/chat", json={"message": message}, headers=headers(session_id)
        )
    assert_error(response, 413)


async def test_queued_messages_are_answered_in_order_while_processing(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    first = ok(await chat(http, session_id, "/slow 0.6 first"))
    second = ok(await chat(http, session_id, "/slow 0.3 second"))
    assert first["is_processing"] is True
    assert second["is_processing"] is True
    done, _ = await until_idle(http, session_id)  # processing covers the queued turn too
    agent = [m["content"] for m in done["messages"] if m["sender"] == "agent"]
    user = [m["content"] for m in done["messages"] if m["sender"] == "user"]
    assert user == ["/slow 0.6 first", "/slow 0.3 second"]
    assert agent == ["You said: first", "You said: second"]


async def test_a_full_queue_is_429(http: httpx.AsyncClient, queued_cli_key: str) -> None:
    session_id, key = new_id(), queued_cli_key
    long_text = " ".join(f"word{n}" for n in range(60))
    ok(await chat(http, session_id, f"/slow 30 {long_text}", key, "queued"))
    await until_streaming(http, session_id, key, "queued")  # it runs: 2 more may queue
    ok(await chat(http, session_id, "queued one", key, "queued"))
    ok(await chat(http, session_id, "queued two", key, "queued"))
    assert_error(await chat(http, session_id, "one too many", key, "queued"), 429)
    ok(
        await http.post(
            "/api/interrupt", params={"app": "queued"}, headers=headers(session_id, key)
        )
    )
    done, _ = await until_idle(http, session_id, key, "queued")
    user = [m["content"] for m in done["messages"] if m["sender"] == "user"]
    assert user == [f"/slow 30 {long_text}", "queued one", "queued two"]


# -- POST /api/interrupt -----------------------------------------------------------------


async def test_interrupt_keeps_partial_text_and_drops_the_queue(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    long_text = " ".join(f"word{n}" for n in range(60))
    ok(await chat(http, session_id, f"/slow 3 {long_text}"))
    ok(await chat(http, session_id, "never answered"))
    await until_streaming(http, session_id)
    stopped = ok(await http.post("/api/interrupt", headers=sent))
    assert stopped["is_processing"] is False
    assert {"messages", "system_events", "title", "is_processing"} <= stopped.keys()

    after = await state(http, session_id)
    events = stopped["system_events"] + after["system_events"]
    assert events.count(INTERRUPTION) == 1, events
    assert after["is_processing"] is False
    assert senders(after) == ["user", "user", "agent"]
    partial = after["messages"][2]["content"]
    full = f"You said: {long_text}"
    assert partial.startswith("You said: word0")
    assert full.startswith(partial)
    assert len(partial) < len(full)

    # The queued message was dropped: the next one is answered, and only it (the
    # queue answers in order, so a kept "never answered" would come first).
    ok(await chat(http, session_id, "and now?"))
    later, _ = await until_idle(http, session_id)
    assert senders(later) == ["user", "user", "agent", "user", "agent"]
    assert later["messages"][-1]["content"] == "You said: and now?"
    assert INTERRUPTION in ok(await http.get("/api/events", headers=sent))


async def test_interrupt_on_an_idle_session_is_a_no_op(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    before = await chat_and_wait(http, session_id, "all done")
    snapshot = ok(await http.post("/api/interrupt", headers=sent))
    assert snapshot["is_processing"] is False
    assert [m["content"] for m in snapshot["messages"]] == [
        m["content"] for m in before["messages"]
    ]
    assert INTERRUPTION not in snapshot["system_events"]
    assert INTERRUPTION not in ok(await http.get("/api/events", headers=sent))


@pytest.mark.parametrize("session_id", [None, "not a session id"], ids=["missing", "bad"])
async def test_interrupt_needs_a_valid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await http.post("/api/interrupt", headers=headers(session_id)), 400)
