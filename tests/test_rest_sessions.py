"""The REST compatibility layer, black box, from the contract (shared/spec/rest-compat.md):
sessions: create, list, get, rename, delete, archive.

One real server process (PostgreSQL, Redis) called over HTTP the way a legacy client
calls it: the message in the query string, the session id only in `X-Session-Id`,
the app key in `AOMI-APP-KEY` or `X-API-Key`, the app chosen with `?app=` or
`?namespace=`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import new_id, new_wallet
from tests.rest_client import (
    NEW_CHAT,
    assert_error,
    chat_and_wait,
    create_session,
    headers,
    ok,
    senders,
    state,
)

# -- POST /api/sessions -------------------------------------------------------------


@pytest.mark.parametrize("body", ["absent", "empty", "{}"])
async def test_create_session_without_a_body(http: httpx.AsyncClient, body: str) -> None:
    session_id = new_id()
    sent = headers(session_id)
    if body == "absent":
        response = await http.post("/api/sessions", headers=sent)
    elif body == "empty":
        response = await http.post(
            "/api/sessions", content=b"", headers={**sent, "Content-Type": "application/json"}
        )
    else:
        response = await http.post("/api/sessions", json={}, headers=sent)
    assert response.status_code in (200, 201), response.text
    created = response.json()
    assert created["session_id"] == session_id
    assert created["title"] == NEW_CHAT
    fetched = ok(await http.get(f"/api/sessions/{session_id}", headers=sent))
    assert fetched["session_id"] == session_id


async def test_create_session_with_public_key_binds_the_wallet(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    created = await create_session(http, session_id, public_key=wallet)
    assert created["session_id"] == session_id
    assert created["title"] == NEW_CHAT
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [session_id]


async def test_create_session_is_idempotent_and_returns_the_current_title(
    http: httpx.AsyncClient,
) -> None:
    session_id, wallet = new_id(), new_wallet()
    await create_session(http, session_id, public_key=wallet)
    ok(
        await http.patch(
            f"/api/sessions/{session_id}", json={"title": "Kept title"}, headers=headers(session_id)
        )
    )
    again = await create_session(http, session_id, public_key=wallet)
    assert again["session_id"] == session_id
    assert again["title"] == "Kept title"
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [session_id]  # still one session


async def test_create_session_returns_a_generated_title(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await chat_and_wait(http, session_id, "ETH price check please")
    again = await create_session(http, session_id)
    assert again["title"] == "ETH price check please"


@pytest.mark.parametrize(
    "session_id",
    [None, "a b", "x" * 129, "caf\u00e9"],
    ids=["missing", "space", "too-long", "not-ascii"],
)
async def test_create_session_needs_a_session_id_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    """Any text id of 1 to 128 printable ASCII characters names a session; others are
    refused with a reason (httpx sends the non-ASCII one as UTF-8 bytes)."""
    sent = [] if session_id is None else [(b"X-Session-Id", session_id.encode())]
    response = await http.post("/api/sessions", headers=sent)
    reason = assert_error(response, 400)
    assert "X-Session-Id" in reason


# -- GET /api/sessions ---------------------------------------------------------------


async def test_list_sessions_needs_public_key(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/api/sessions"), 400)


async def test_list_sessions_of_a_wallet_newest_activity_first(
    http: httpx.AsyncClient, alpha_cli_key: str
) -> None:
    wallet, other = new_wallet(), new_wallet()
    first, second, third = new_id(), new_id(), new_id()
    for session_id in (first, second, third):
        await create_session(http, session_id, public_key=wallet)
        await asyncio.sleep(0.05)
    await create_session(http, new_id(), public_key=other)  # another wallet
    alpha_session = new_id()  # the same wallet in another app
    await create_session(http, alpha_session, key=alpha_cli_key, app="alpha", public_key=wallet)

    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [third, second, first]
    for item in listed:
        assert item["title"] == NEW_CHAT
        assert item["is_archived"] is False

    await asyncio.sleep(0.05)
    await chat_and_wait(http, first, "activity on the oldest")  # now the most recently active
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [first, third, second]

    limited = ok(await http.get("/api/sessions", params={"public_key": wallet, "limit": "2"}))
    assert [s["session_id"] for s in limited] == [first, third]

    in_alpha = ok(
        await http.get(
            "/api/sessions",
            params={"public_key": wallet, "app": "alpha"},
            headers=headers(key=alpha_cli_key),
        )
    )
    assert [s["session_id"] for s in in_alpha] == [alpha_session]


async def test_a_chat_with_public_key_lists_the_session(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    await chat_and_wait(http, session_id, "hello wallet", public_key=wallet)
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [session_id]
    assert listed[0]["title"] == "Hello wallet"


# -- GET/PATCH/DELETE /api/sessions/{id}, archive, unarchive -----------------------


async def test_get_session(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    fetched = ok(await http.get(f"/api/sessions/{session_id}"))  # no header: the path names it
    assert fetched["session_id"] == session_id
    assert fetched["title"] == NEW_CHAT
    assert fetched["is_archived"] is False
    repeated = ok(await http.get(f"/api/sessions/{session_id}", headers=headers(session_id)))
    assert repeated["session_id"] == session_id


async def test_unknown_session_is_404(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    assert_error(await http.get(f"/api/sessions/{session_id}", headers=sent), 404)
    assert_error(
        await http.patch(f"/api/sessions/{session_id}", json={"title": "x"}, headers=sent), 404
    )
    # deleting is idempotent, as in the legacy backend: the widget drops the thread
    assert ok(await http.delete(f"/api/sessions/{session_id}", headers=sent)) == {"deleted": False}
    assert_error(await http.post(f"/api/sessions/{session_id}/archive", headers=sent), 404)
    assert_error(await http.post(f"/api/sessions/{session_id}/unarchive", headers=sent), 404)
    assert_error(await http.post("/api/interrupt", headers=sent), 404)
    assert_error(await http.get("/api/events", headers=sent), 404)
    # none of these created it
    assert_error(await http.get(f"/api/sessions/{session_id}", headers=sent), 404)


async def test_rename_session(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    renamed = ok(
        await http.patch(
            f"/api/sessions/{session_id}",
            json={"title": "ETH price check"},
            headers=headers(session_id),
        )
    )
    assert renamed["session_id"] == session_id
    assert renamed["title"] == "ETH price check"
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == "ETH price check"
    assert (await state(http, session_id))["title"] == "ETH price check"


@pytest.mark.parametrize(
    "body",
    [{}, {"title": ""}, {"title": "   "}, {"title": None}, {"name": "wrong field"}],
    ids=["missing", "empty", "blank", "null", "other-field"],
)
async def test_rename_needs_a_title(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    assert_error(
        await http.patch(f"/api/sessions/{session_id}", json=body, headers=headers(session_id)),
        400,
    )
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == NEW_CHAT


async def test_rename_without_a_json_body_is_400(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    assert_error(
        await http.patch(
            f"/api/sessions/{session_id}",
            content=b"title=nope",
            headers={**headers(session_id), "Content-Type": "application/json"},
        ),
        400,
    )


async def test_a_user_title_is_not_overwritten_by_automatic_titling(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    ok(
        await http.patch(
            f"/api/sessions/{session_id}",
            json={"title": "My own title"},
            headers=headers(session_id),
        )
    )
    snapshot = await chat_and_wait(http, session_id, "ETH price check please")
    assert senders(snapshot) == ["user", "agent"]  # the exchange that would generate a title
    assert snapshot["title"] == "My own title"
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == "My own title"


async def test_a_title_is_generated_after_the_first_exchange(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    snapshot = await chat_and_wait(http, session_id, "ETH price check please")
    assert snapshot["title"] == "ETH price check please"
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == "ETH price check please"


async def test_delete_session_removes_it_everywhere(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    await chat_and_wait(http, session_id, "something to forget", public_key=wallet)
    sent = headers(session_id)
    deleted = ok(await http.delete(f"/api/sessions/{session_id}", headers=sent))
    assert deleted["deleted"] is True
    assert_error(await http.get(f"/api/sessions/{session_id}", headers=sent), 404)
    assert ok(await http.get("/api/sessions", params={"public_key": wallet})) == []
    gone = await state(http, session_id)
    assert gone["messages"] == []
    assert gone["title"] is None
    assert gone["is_processing"] is False
    assert_error(await http.get("/api/events", headers=sent), 404)
    assert ok(await http.delete(f"/api/sessions/{session_id}", headers=sent)) == {"deleted": False}
    # the same id starts afresh: nothing of the old conversation comes back
    snapshot = await chat_and_wait(http, session_id, "a new start")
    assert [m["content"] for m in snapshot["messages"]] == ["a new start", "You said: a new start"]


async def test_archive_and_unarchive(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    await create_session(http, session_id, public_key=wallet)
    sent = headers(session_id)
    archived = ok(await http.post(f"/api/sessions/{session_id}/archive", headers=sent))
    assert archived["session_id"] == session_id
    assert archived["is_archived"] is True
    assert ok(await http.get(f"/api/sessions/{session_id}"))["is_archived"] is True
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [(s["session_id"], s["is_archived"]) for s in listed] in ([(session_id, True)], [])

    restored = ok(await http.post(f"/api/sessions/{session_id}/unarchive", headers=sent))
    assert restored["session_id"] == session_id
    assert restored["is_archived"] is False
    assert ok(await http.get(f"/api/sessions/{session_id}"))["is_archived"] is False
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [(s["session_id"], s["is_archived"]) for s in listed] == [(session_id, False)]


async def test_list_sessions_limit_defaults_to_50_and_caps_at_200(
    http: httpx.AsyncClient,
) -> None:
    wallet = new_wallet()
    ids = [new_id() for _ in range(201)]
    for start in range(0, len(ids), 20):
        await asyncio.gather(
            *(create_session(http, i, public_key=wallet) for i in ids[start : start + 20])
        )
    default = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert len(default) == 50
    most = ok(await http.get("/api/sessions", params={"public_key": wallet, "limit": "200"}))
    assert len(most) == 200
    assert {s["session_id"] for s in most} <= set(ids)
    beyond = await http.get("/api/sessions", params={"public_key": wallet, "limit": "1000"})
    if beyond.status_code == 200:
        assert len(beyond.json()) == 200  # capped
    else:
        assert_error(beyond, 400)
