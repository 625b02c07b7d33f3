"""Live delivery to many subscribers renders each event once per distinct request
(schema/live.py), and every subscriber still receives exactly its own result."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import new_id
from tests.live import LEGACY_WS, Collector, post, wait_for_subscribers, ws_session
from tests.processes import ServerProcess

CREATE = "mutation($id: ID!) { createSession(id: $id) { id } }"
NOTICE = "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"
NOTICES = "subscription($id: ID!) { systemNotice(sessionId: $id) { cursor message } }"
NOTICE_TEXT = "subscription($id: ID!) { systemNotice(sessionId: $id) { message } }"


@pytest.fixture
def server(replicas: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return replicas[0]


async def rendered(server: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        status = (await http.get(f"{server.url}/readyz")).json()
    return int(status["events"]["rendered"])


async def test_each_event_is_rendered_once_per_distinct_request(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with (
        ws_session(server) as first,
        ws_session(server) as second,
        ws_session(server) as third,
        ws_session(server) as other,
    ):
        same = [Collector(ws, NOTICES, id=session_id) for ws in (first, second, third)]
        different = Collector(other, NOTICE_TEXT, id=session_id)
        await wait_for_subscribers(server, 4)
        before = await rendered(server)
        await post(server, NOTICE, id=session_id, m="one")
        await post(server, NOTICE, id=session_id, m="two")
        results = [await c.wait_for(2) for c in same]
        texts = await different.wait_for(2)
        after = await rendered(server)
        for collector in (*same, different):
            await collector.stop()
    # Two events, two distinct selection sets: four renderings for four subscribers.
    assert after - before == 4
    assert results[0] == results[1] == results[2]
    assert [r["systemNotice"]["message"] for r in results[0]] == ["one", "two"]
    assert all(r["systemNotice"]["cursor"].isdigit() for r in results[0])
    assert texts == [{"systemNotice": {"message": "one"}}, {"systemNotice": {"message": "two"}}]


async def test_both_protocols_receive_the_same_result(server: ServerProcess) -> None:
    """graphql-ws has no sink: Strawberry executes its results, which must match."""
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as modern, ws_session(server, protocol=LEGACY_WS) as legacy:
        collectors = [Collector(ws, NOTICES, id=session_id) for ws in (modern, legacy)]
        await wait_for_subscribers(server, 2)
        await post(server, NOTICE, id=session_id, m="hello")
        received = [await c.wait_for(1) for c in collectors]
        for collector in collectors:
            await collector.stop()
    assert received[0] == received[1]
    assert received[0][0]["systemNotice"]["message"] == "hello"
