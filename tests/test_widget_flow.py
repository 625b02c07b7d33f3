"""The legacy React widget's whole flow against a keyed app, as the widget sends it.

The widget opens the update stream with the session header alone, creates and
lists threads without its key (from its page's origin), chats with the key, polls
the state with the session header alone, renames and deletes threads without the
key, and falls back to the opaque id `default-session` once its last thread is
gone. Runs against a real server on PostgreSQL + Redis.
"""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import new_id, new_wallet
from tests.rest_client import chat, headers, ok, until_idle, updates

FROM_WIDGET = {"Origin": "https://widget.example"}


async def test_the_widget_flow_for_a_keyed_app(
    http: httpx.AsyncClient, widget_cli_key: str
) -> None:
    key, wallet, thread = widget_cli_key, new_wallet(), new_id()
    keyless = {**headers(thread), **FROM_WIDGET}

    async with updates(http, thread, extra_headers=FROM_WIDGET) as stream:
        # createThread: no key, no app
        created = await http.post("/api/sessions", json={"public_key": wallet}, headers=keyless)
        assert ok(created) == {"session_id": thread, "title": "New chat"}

        # the first message, with the key: the title arrives on the stream
        ok(await chat(http, thread, "ETH price check please", key, "widget", public_key=wallet))
        [titled] = await stream.wait_for_type("title_changed")
        assert titled == {
            "type": "title_changed",
            "session_id": thread,
            "new_title": "ETH price check please",
        }
        snapshot, _ = await until_idle(http, thread)  # polled with the session header alone
        assert snapshot["messages"][-1]["content"] == "You said: ETH price check please"

        # listThreads: by wallet, no key
        listed = ok(
            await http.get("/api/sessions", params={"public_key": wallet}, headers=FROM_WIDGET)
        )
        assert listed == [
            {"session_id": thread, "title": "ETH price check please", "is_archived": False}
        ]

        # rename without the key: the stream hears of it
        renamed = await http.patch(
            f"/api/sessions/{thread}", json={"title": "ETH price"}, headers=keyless
        )
        assert ok(renamed) == {"session_id": thread, "title": "ETH price"}
        await stream.wait_for_type("title_changed", 2)
        assert stream.of_type("title_changed")[1]["new_title"] == "ETH price"

        # a tool call: progress and completion arrive
        ok(await chat(http, thread, '/tool progress {"steps": 2}', key, "widget"))
        await stream.wait_for_type("tool_complete")
        progress = [e["result"] for e in stream.of_type("tool_update")]
        assert {"status": "running", "progress": {"step": 2, "of": 2}} in progress
        assert stream.of_type("tool_complete")[0]["result"] == {"done": 2}
        await until_idle(http, thread)

    # delete without the key: gone from the list
    deleted = await http.delete(f"/api/sessions/{thread}", headers=keyless)
    assert ok(deleted) == {"deleted": True}
    assert (
        ok(await http.get("/api/sessions", params={"public_key": wallet}, headers=FROM_WIDGET))
        == []
    )

    # its last thread gone, the widget falls back to an opaque id and chats on
    fallback = f"default-session-{uuid.uuid4().hex[:12]}"
    async with updates(http, fallback, extra_headers=FROM_WIDGET) as stream:
        ok(await chat(http, fallback, "still there?", key, "widget", public_key=wallet))
        [titled] = await stream.wait_for_type("title_changed")
        assert titled["session_id"] == fallback
    snapshot, _ = await until_idle(http, fallback)
    assert [m["content"] for m in snapshot["messages"]] == [
        "still there?",
        "You said: still there?",
    ]
    relisted = ok(
        await http.get("/api/sessions", params={"public_key": wallet}, headers=FROM_WIDGET)
    )
    assert [s["session_id"] for s in relisted] == [fallback]
