"""Revoking an app key reaches the connections already open with it: their
WebSockets close with 4403 and their event streams end with a last notice, within
the key cache time when the CLI revokes it from another process. Connections with
other keys carry on.

Live tests run against a real server process (PostgreSQL, Redis) and revoke with
the CLI, as an operator would; the in-process tests show the shared check's
bookkeeping (one query for many keys; a revocation in the same process at once).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import websockets
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from runtime import keys
from runtime.key_watch import KeyWatch
from tests.conftest import new_id
from tests.live import (
    LEGACY_WS,
    TRANSPORT_WS,
    Collector,
    cli,
    post,
    wait_for_subscribers,
    ws_session,
)
from tests.processes import ServerProcess
from tests.rest_client import updates

CREATE = "mutation($id: ID!) { createSession(id: $id) { id } }"
NOTICE = "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"
NOTICES = "subscription($id: ID!) { systemNotice(sessionId: $id) { message } }"
DEADLINE = 20.0  # generous: the server re-checks every key cache period (2 s)


def new_key(env: dict[str, str]) -> tuple[str, str]:
    """A fresh key of app alpha and its prefix (what `keys revoke` takes)."""
    clear = cli(env, "keys", "create", "--app", "alpha", "--label", "to-revoke")
    return clear, clear.rsplit("_", 1)[0]


async def subscribers(server: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        return int((await http.get(f"{server.url}/readyz")).json()["events"]["subscribers"])


async def alpha_session(server: ServerProcess, key: str) -> str:
    session_id = new_id()
    await post(server, CREATE, key=key, id=session_id)
    return session_id


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE))
    return message


async def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes the socket; its close code."""
    async with asyncio.timeout(DEADLINE):
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as closed:
            return None if closed.rcvd is None else closed.rcvd.code


async def test_graphql_transport_ws_closes_with_4403_when_its_key_is_revoked(
    server: ServerProcess, live_env: dict[str, str], alpha_cli_key: str
) -> None:
    doomed, prefix = new_key(live_env)
    session_id = await alpha_session(server, alpha_cli_key)
    baseline = await subscribers(server)
    async with (
        connect(
            f"ws://127.0.0.1:{server.port}/graphql", subprotocols=[Subprotocol(TRANSPORT_WS)]
        ) as ws,
        ws_session(server, init_payload={"appKey": alpha_cli_key}) as other,
    ):
        await ws.send(json.dumps({"type": "connection_init", "payload": {"appKey": doomed}}))
        assert (await next_message(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": "1",
                    "payload": {"query": NOTICES, "variables": {"id": session_id}},
                }
            )
        )
        survivor = Collector(other, NOTICES, id=session_id)
        await wait_for_subscribers(server, baseline + 2)
        await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="before")
        received = await next_message(ws)
        assert received["payload"]["data"]["systemNotice"]["message"] == "before"
        await survivor.wait_for(1)

        cli(live_env, "keys", "revoke", prefix)
        assert await close_code(ws) == 4403

        await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="after")
        later = await survivor.wait_for(2)
        await survivor.stop()
    assert [r["systemNotice"]["message"] for r in later] == ["before", "after"]


async def test_legacy_graphql_ws_closes_with_4403_when_its_key_is_revoked(
    server: ServerProcess, live_env: dict[str, str], alpha_cli_key: str
) -> None:
    doomed, prefix = new_key(live_env)
    session_id = await alpha_session(server, alpha_cli_key)
    baseline = await subscribers(server)
    async with connect(
        f"ws://127.0.0.1:{server.port}/graphql",
        subprotocols=[Subprotocol(LEGACY_WS)],
        additional_headers={"X-API-Key": doomed},  # the key in the upgrade request
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await next_message(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "type": "start",
                    "id": "1",
                    "payload": {"query": NOTICES, "variables": {"id": session_id}},
                }
            )
        )
        await wait_for_subscribers(server, baseline + 1)
        await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="before")
        data = await next_message(ws)
        assert data["type"] == "data"
        assert data["payload"]["data"]["systemNotice"]["message"] == "before"

        cli(live_env, "keys", "revoke", prefix)
        # The operation is stopped (the protocol says `complete`), then the socket closes.
        assert await next_message(ws) == {"type": "complete", "id": "1"}
        assert await close_code(ws) == 4403


async def test_event_stream_ends_with_a_notice_when_its_key_is_revoked(
    server: ServerProcess, http: httpx.AsyncClient, live_env: dict[str, str], alpha_cli_key: str
) -> None:
    doomed, prefix = new_key(live_env)
    session_id = await alpha_session(server, alpha_cli_key)
    async with (
        updates(http, session_id, key=doomed, app="alpha") as stream,
        updates(http, session_id, key=alpha_cli_key, app="alpha") as survivor,
    ):
        await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="before")
        await stream.wait_for_type("system_notice")
        await survivor.wait_for_type("system_notice")

        cli(live_env, "keys", "revoke", prefix)
        await stream.wait_until(lambda s: s.closed, "the stream's end", timeout=DEADLINE)

        await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="after")
        await survivor.wait_for_type("system_notice", count=2)
        assert not survivor.closed

    before, last = stream.events
    assert before["message"] == "before"
    assert last["type"] == "system_notice"
    assert last["session_id"] == session_id
    assert last["code"] == "UNAUTHENTICATED"
    assert "revoked" in last["message"]
    assert stream.ids[-1] is None  # not a session event: no cursor to resume from
    assert [e["message"] for e in survivor.of_type("system_notice")] == ["before", "after"]


# -- in process: the shared check -----------------------------------------------------------


async def test_one_check_covers_every_held_key_in_few_queries(app: Starlette) -> None:
    cleared = [await keys.create_key(["alpha"], "tests") for _ in range(5)]
    prefixes = [info.prefix for _, info in cleared]
    await keys.revoke_key(prefixes[1])  # as the CLI does: in the database only
    await keys.revoke_key(prefixes[3])
    queries: list[Sequence[str]] = []

    async def counted(batch: Sequence[str]) -> set[str]:
        queries.append(batch)
        return await keys.unrevoked(batch)

    watch = KeyWatch(counted, interval=3600, batch=2)
    closed: list[str] = []

    def closer(prefix: str) -> Callable[[], None]:
        return lambda: closed.append(prefix)

    holds = [watch.hold(p, closer(p)) for p in prefixes for _ in range(3)]
    assert watch.connections == 15
    await watch.check()
    assert [len(batch) for batch in queries] == [2, 2, 1]  # five distinct keys
    assert sorted(closed) == sorted([prefixes[1]] * 3 + [prefixes[3]] * 3)
    assert watch.connections == 9
    for hold in holds:
        hold.release()
    assert watch.connections == 0
    await watch.aclose()


async def test_a_revocation_in_this_process_closes_its_connections_at_once(
    app: Starlette,
) -> None:
    apps = app.state.runtime.apps
    _, doomed = await keys.create_key(["alpha"], "tests")
    _, kept = await keys.create_key(["alpha"], "tests")
    closed: list[str] = []
    apps.key_watch.hold(doomed.prefix, lambda: closed.append("doomed"))
    kept_hold = apps.key_watch.hold(kept.prefix, lambda: closed.append("kept"))
    await apps.revoke_key(doomed.prefix)
    assert closed == ["doomed"]  # before any periodic check
    kept_hold.release()
