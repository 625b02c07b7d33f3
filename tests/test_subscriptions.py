"""GraphQL subscriptions over real WebSockets against real server processes.

Two replicas share the test PostgreSQL database and the shared Redis; a `gql`
client subscribes on one and mutations go to either.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import websockets

from tests.conftest import new_id
from tests.live import (
    LEGACY_WS,
    Collector,
    post,
    post_raw,
    raw_ws,
    wait_for_subscribers,
    ws_session,
)
from tests.processes import ServerProcess

EVENTS = """
subscription($id: ID!, $types: [String!], $after: String) {
  sessionEvents(sessionId: $id, types: $types, after: $after) { cursor type sessionId app data }
}"""
TITLES = "subscription($id: ID!) { titleChanged(sessionId: $id) { cursor newTitle source } }"
NOTICES = "subscription($id: ID!) { systemNotice(sessionId: $id) { cursor message } }"
CREATE = "mutation($id: ID!) { createSession(id: $id) { id } }"
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }"
NOTICE = "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"


@pytest.fixture
def server(replicas: tuple[ServerProcess, ServerProcess]) -> ServerProcess:
    return replicas[0]


async def test_each_event_type_arrives(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        events = Collector(ws, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, RENAME, id=session_id, t="Plans")
        await post(server, "mutation($id: ID!) { archiveSession(id: $id) { id } }", id=session_id)
        await post(server, NOTICE, id=session_id, m="Maintenance at noon")
        await post(
            server,
            "mutation($id: ID!) { updateMetadata(sessionId: $id, metadata: {a: 1}) { id } }",
            id=session_id,
        )
        await post(server, "mutation($id: ID!) { deleteSession(id: $id) { id } }", id=session_id)
        received = [r["sessionEvents"] for r in await events.wait_for(5)]
        await events.stop()
    assert [e["type"] for e in received] == [
        "title_changed",
        "session_updated",
        "system_notice",
        "session_updated",
        "session_deleted",
    ]
    assert received[0]["data"] == {"new_title": "Plans", "source": "user"}
    assert received[1]["data"] == {"changes": {"is_archived": True}}
    assert received[2]["data"]["message"] == "Maintenance at noon"
    assert received[3]["data"] == {"changes": {"metadata": {"a": 1}}}
    assert {e["sessionId"] for e in received} == {session_id}
    cursors = [int(e["cursor"]) for e in received]
    assert cursors == sorted(cursors)
    assert len(set(cursors)) == 5


async def test_typed_subscriptions(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        titles = Collector(ws, TITLES, id=session_id)
        notices = Collector(ws, NOTICES, id=session_id)
        await wait_for_subscribers(server, 2)
        await post(server, NOTICE, id=session_id, m="hello")
        await post(server, RENAME, id=session_id, t="Renamed")
        [title] = await titles.wait_for(1)
        [notice] = await notices.wait_for(1)
        await titles.stop()
        await notices.stop()
    assert title["titleChanged"]["newTitle"] == "Renamed"
    assert title["titleChanged"]["source"] == "user"
    assert notice["systemNotice"]["message"] == "hello"


async def test_types_filter(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        events = Collector(ws, EVENTS, id=session_id, types=["system_notice"])
        await wait_for_subscribers(server, 1)
        await post(server, RENAME, id=session_id, t="Ignored")
        await post(server, NOTICE, id=session_id, m="wanted")
        [only] = await events.wait_for(1)
        await events.stop()
    assert only["sessionEvents"]["type"] == "system_notice"


async def test_resume_after_a_cursor_gets_exactly_the_missed_events(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        first = Collector(ws, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, NOTICE, id=session_id, m="m0")
        [seen] = await first.wait_for(1)
        await first.stop()
    cursor = seen["sessionEvents"]["cursor"]
    for n in range(1, 5):  # published while nobody listens
        await post(server, NOTICE, id=session_id, m=f"m{n}")

    async with ws_session(server) as ws:
        resumed = Collector(ws, EVENTS, id=session_id, after=cursor)
        replayed = await resumed.wait_for(4)
        await post(server, NOTICE, id=session_id, m="m5")
        everything = await resumed.wait_for(5)
        await resumed.stop()
    assert [r["sessionEvents"]["data"]["message"] for r in replayed] == ["m1", "m2", "m3", "m4"]
    assert [r["sessionEvents"]["data"]["message"] for r in everything] == [
        f"m{n}" for n in range(1, 6)
    ]
    assert len(resumed.results) == 5  # nothing twice


async def test_expired_cursor_gets_resync_required(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        events = Collector(ws, EVENTS, id=session_id, after="1")
        [resync] = await events.wait_for(1)
        await events.stop()
    assert resync["sessionEvents"]["type"] == "resync_required"
    assert resync["sessionEvents"]["data"]["code"] == "CURSOR_EXPIRED"


async def test_events_cross_replicas(replicas: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = replicas
    session_id = new_id()
    await post(a, CREATE, id=session_id)
    async with ws_session(a) as ws_a, ws_session(b) as ws_b:
        on_a = Collector(ws_a, EVENTS, id=session_id)
        on_b = Collector(ws_b, EVENTS, id=session_id)
        await wait_for_subscribers(a, 1)
        await wait_for_subscribers(b, 1)
        await post(a, RENAME, id=session_id, t="From A")
        await post(b, NOTICE, id=session_id, m="From B")
        got_a = [r["sessionEvents"]["type"] for r in await on_a.wait_for(2)]
        got_b = [r["sessionEvents"]["type"] for r in await on_b.wait_for(2)]
        await on_a.stop()
        await on_b.stop()
    assert got_a == got_b == ["title_changed", "system_notice"]


async def test_subscribing_before_the_session_exists(server: ServerProcess) -> None:
    session_id = new_id()
    async with ws_session(server) as ws:
        events = Collector(ws, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, CREATE, id=session_id)
        await post(server, RENAME, id=session_id, t="First")
        [event] = await events.wait_for(1)
        await events.stop()
    assert event["sessionEvents"]["data"]["new_title"] == "First"


async def test_key_in_connection_init_payload(server: ServerProcess, alpha_cli_key: str) -> None:
    session_id = new_id()
    await post(server, CREATE, key=alpha_cli_key, id=session_id)
    async with ws_session(server, init_payload={"appKey": alpha_cli_key}) as ws:
        events = Collector(ws, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, RENAME, key=alpha_cli_key, id=session_id, t="Alpha")
        [event] = await events.wait_for(1)
        await events.stop()
    assert event["sessionEvents"]["app"] == "alpha"


async def test_key_in_upgrade_headers(server: ServerProcess, alpha_cli_key: str) -> None:
    session_id = new_id()
    await post(server, CREATE, key=alpha_cli_key, id=session_id)
    async with ws_session(server, headers={"X-API-Key": alpha_cli_key}) as ws:
        events = Collector(ws, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="via headers")
        [event] = await events.wait_for(1)
        await events.stop()
    assert event["sessionEvents"]["data"]["message"] == "via headers"


async def test_bad_key_is_rejected_at_connection_init(server: ServerProcess) -> None:
    raw = await raw_ws(server)
    await raw.send('{"type": "connection_init", "payload": {"appKey": "cfb_bad_key"}}')
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await raw.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_another_apps_session_is_not_found(server: ServerProcess, alpha_cli_key: str) -> None:
    session_id = new_id()
    await post(server, CREATE, key=alpha_cli_key, id=session_id)
    async with ws_session(server) as ws:  # the default app
        events = Collector(ws, EVENTS, id=session_id)
        error = await events.wait_closed()
    assert error is not None
    assert "not found" in str(error)
    assert "NOT_FOUND" in str(error)  # extensions.code reaches subscription errors too


async def test_events_of_another_app_are_never_delivered(
    server: ServerProcess, alpha_cli_key: str
) -> None:
    session_id = new_id()  # not created yet: anyone may subscribe
    async with ws_session(server) as ws:
        default_app = Collector(ws, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, CREATE, key=alpha_cli_key, id=session_id)
        await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="alpha only")
        with pytest.raises(TimeoutError):
            await default_app.wait_for(1, timeout=1)
        await default_app.stop()


async def test_legacy_graphql_ws_protocol(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server, protocol=LEGACY_WS) as ws:
        events = Collector(ws, NOTICES, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, NOTICE, id=session_id, m="legacy")
        [event] = await events.wait_for(1)
        await events.stop()
    assert event["systemNotice"]["message"] == "legacy"


async def test_subscriptions_per_connection_are_limited(server: ServerProcess) -> None:
    session_id = new_id()
    async with ws_session(server) as ws:
        collectors = [Collector(ws, NOTICES, id=session_id) for _ in range(3)]
        await wait_for_subscribers(server, 3)
        extra = Collector(ws, NOTICES, id=session_id)
        error = await extra.wait_closed()
        for collector in collectors:
            await collector.stop()
    assert error is not None
    assert "limit" in str(error)


async def test_connection_init_timeout(server: ServerProcess) -> None:
    raw = await raw_ws(server)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await raw.recv()  # never sends connection_init; the server gives up after 1 s
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4408


async def test_cross_origin_handshakes_need_an_allowed_origin(server: ServerProcess) -> None:
    with pytest.raises(websockets.InvalidStatus):
        await raw_ws(server, origin="https://evil.example")
    allowed = await raw_ws(server, origin="https://app.example")
    await allowed.close()


async def test_post_system_notice_validates(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    body = await post_raw(server, NOTICE, id=session_id, m="   ")
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    missing = await post_raw(server, NOTICE, id=new_id(), m="hi")
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_server_shutdown_closes_subscriptions_cleanly(
    live_env: dict[str, str], tmp_path: Path
) -> None:
    server = ServerProcess(live_env, tmp_path / "shutdown.log")
    server.wait_ready()
    raw = await raw_ws(server)
    await raw.send('{"type": "connection_init", "payload": {}}')
    assert "connection_ack" in str(await raw.recv())
    await raw.send(
        '{"type": "subscribe", "id": "1", "payload": {"query": '
        f'"subscription {{ systemNotice(sessionId: \\"{new_id()}\\") {{ message }} }}"}}}}'
    )
    await wait_for_subscribers(server, 1)
    assert server.stop()
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await raw.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012  # "service restart": reconnect elsewhere
