"""The REST compatibility layer, black box, from the contract (shared/spec/rest-compat.md):
the Server-Sent Events stream at /api/updates.

One real server process (PostgreSQL, Redis) called over HTTP the way a legacy client
calls it: the message in the query string, the session id only in `X-Session-Id`,
the app key in `AOMI-APP-KEY` or `X-API-Key`, the app chosen with `?app=` or
`?namespace=`.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise

import httpx
import pytest

from tests.conftest import new_id
from tests.rest_client import (
    SSE_TYPES,
    assert_error,
    chat,
    create_session,
    headers,
    ok,
    until_idle,
    updates,
    updates_status,
)

# -- GET /api/updates (Server-Sent Events) ---------------------------------------------------


async def test_updates_is_an_event_stream_and_may_open_before_the_session_exists(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in stream.response.headers.get("cache-control", "")
        assert stream.response.headers.get("x-accel-buffering") == "no"
        await create_session(http, session_id)
        renamed = await http.patch(
            f"/api/sessions/{session_id}",
            json={"title": "ETH price check"},
            headers=headers(session_id),
        )
        ok(renamed)
        [event] = await stream.wait_for_type("title_changed")
    assert event["type"] == "title_changed"
    assert event["session_id"] == session_id
    assert event["new_title"] == "ETH price check"
    assert stream.ids[stream.events.index(event)], "every event has an id: line"


async def test_updates_carry_only_this_sessions_events(http: httpx.AsyncClient) -> None:
    mine, other = new_id(), new_id()
    await create_session(http, mine)
    await create_session(http, other)
    async with updates(http, mine) as stream:
        ok(
            await http.patch(
                f"/api/sessions/{other}", json={"title": "Not mine"}, headers=headers(other)
            )
        )
        ok(await http.patch(f"/api/sessions/{mine}", json={"title": "Mine"}, headers=headers(mine)))
        await stream.wait_for_type("title_changed")
        await asyncio.sleep(0.3)
    assert [(e["type"], e["session_id"], e.get("new_title")) for e in stream.events] == [
        ("title_changed", mine, "Mine")
    ]


async def test_updates_carry_tool_events_and_only_documented_types(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        ok(await chat(http, session_id, '/tool calculator {"expression": "6*7"}'))
        [complete] = await stream.wait_for_type("tool_complete")
        await until_idle(http, session_id)
        await stream.wait_for_type("title_changed")  # generated before processing ends
        await asyncio.sleep(0.3)
    updates_ = stream.of_type("tool_update")
    assert updates_, stream.events
    update = updates_[0]
    for event in (update, complete):
        assert event["session_id"] == session_id
        assert event["tool_name"] == "calculator"
        assert {"id", "call_id", "result"} <= event.keys()
    assert update["result"]["status"] == "running"
    assert complete["result"] == {"expression": "6*7", "value": 42}
    assert complete["id"] == update["id"]
    assert complete["call_id"] == update["call_id"]
    assert stream.events.index(update) < stream.events.index(complete)
    assert {e["type"] for e in stream.events} <= SSE_TYPES, [e["type"] for e in stream.events]
    assert all(e["session_id"] == session_id for e in stream.events)
    assert all(stream.ids), stream.ids
    assert set(stream.data_lines) == {1}, stream.data_lines  # one `data:` line per event
    [title] = stream.of_type("title_changed")
    assert title["new_title"] == "Using calculator"


async def test_updates_carry_system_notices(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        ok(await chat(http, session_id, "/fail boom"))
        [notice] = await stream.wait_for_type("system_notice")
    assert notice["session_id"] == session_id
    assert "boom" in notice["message"]
    assert {e["type"] for e in stream.events} <= SSE_TYPES


async def test_updates_replay_missed_events_after_last_event_id(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    sent = headers(session_id)

    async def rename(title: str) -> None:
        ok(await http.patch(f"/api/sessions/{session_id}", json={"title": title}, headers=sent))

    async with updates(http, session_id) as first:
        await rename("Title one")
        [seen] = await first.wait_for_type("title_changed")
    last_id = first.ids[first.events.index(seen)]
    assert last_id, "the event had no id: line"

    await rename("Title two")  # missed while disconnected
    await rename("Title three")

    async with updates(http, session_id, last_event_id=last_id) as second:
        await second.wait_for_type("title_changed", 2)
        await rename("Title four")  # live after the replay
        await second.wait_for_type("title_changed", 3)
        await asyncio.sleep(0.5)  # room for a duplicate to show up
    titles = [e["new_title"] for e in second.of_type("title_changed")]
    assert titles == ["Title two", "Title three", "Title four"]
    ids = [second.ids[second.events.index(e)] for e in second.of_type("title_changed")]
    assert all(ids), ids
    assert len(set(ids)) == 3, ids
    assert last_id not in ids


async def test_updates_send_keep_alive_comments(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        await asyncio.sleep(16.5)  # an idle stream, longer than one keep-alive period
        ended = asyncio.get_running_loop().time()
    assert stream.comments, "no comment line on an idle stream"
    marks = [stream.opened_at, *stream.comment_times, ended]
    gaps = [later - earlier for earlier, later in pairwise(marks)]
    assert max(gaps) <= 15.5, gaps  # a comment at least every 15 s
    assert stream.events == []


@pytest.mark.parametrize("session_id", [None, "not a session id"], ids=["missing", "bad"])
async def test_updates_need_a_uuid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await updates_status(http, headers(session_id)), 400)


async def test_updates_report_a_failing_tool(http: httpx.AsyncClient, gamma_cli_key: str) -> None:
    session_id, key = new_id(), gamma_cli_key
    async with updates(http, session_id, key, "gamma") as stream:
        ok(await chat(http, session_id, "/tool explode {}", key, "gamma"))
        [complete] = await stream.wait_for_type("tool_complete")
    assert complete["session_id"] == session_id
    assert complete["tool_name"] == "explode"
    assert "kaboom" in complete["result"]["error"]
    done, _ = await until_idle(http, session_id, key, "gamma")
    [tool] = [m for m in done["messages"] if m["tool_result"] is not None]
    assert tool["tool_result"][0] == "explode"
    assert "kaboom" in tool["tool_result"][1]
