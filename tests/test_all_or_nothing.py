"""A call that fails changes nothing: every argument and the queue's capacity are
checked before anything is written, over GraphQL and REST alike (property-based,
against a real server on PostgreSQL and Redis). Ids that collide between sessions
and threads are a conflict, never an internal error."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import new_id, new_wallet
from tests.processes import ServerProcess

GRAPHQL_CODES = {"INVALID_INPUT", "NOT_FOUND", "CONFLICT", "QUEUE_FULL"}
REST_STATUSES = {400, 404, 409, 413, 429}
IDLE = "query($s: ID!) { session(id: $s) { isProcessing } }"


@dataclass(frozen=True)
class World:
    """What the bad calls aim at: a session with content, a second thread in it,
    and another app's session with its own thread."""

    session_id: str
    thread_id: str
    other_app_thread_id: str
    started: datetime

    @property
    def known_ids(self) -> list[str]:
        return [self.session_id, self.thread_id, self.other_app_thread_id]


def graphql(server: ServerProcess, query: str, key: str | None = None, **variables: Any) -> Any:
    headers = {"AOMI-APP-KEY": key} if key else {}
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=10,
    )
    return response.json()


def graphql_data(
    server: ServerProcess, query: str, key: str | None = None, **variables: Any
) -> Any:
    body = graphql(server, query, key, **variables)
    assert "errors" not in body, body
    return body["data"]


def wait_idle(server: ServerProcess, session_id: str, key: str | None = None) -> None:
    deadline = time.monotonic() + 60
    while graphql_data(server, IDLE, key, s=session_id)["session"]["isProcessing"]:
        assert time.monotonic() < deadline, "the turn did not finish"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def world(server: ServerProcess, beta_cli_key: str) -> World:
    started = datetime.now(UTC)
    session_id, thread_id, other_session, other_thread = new_id(), new_id(), new_id(), new_id()
    graphql_data(
        server,
        "mutation($id: ID!, $w: String!) { createSession(id: $id, publicKey: $w, "
        'title: "Kept", metadata: {a: 1}) { id } }',
        id=session_id,
        w=new_wallet(),
    )
    graphql_data(
        server,
        'mutation($s: ID!) { updateUserState(sessionId: $s, userState: {chain: "base"}) { id } }',
        s=session_id,
    )
    graphql_data(
        server,
        "mutation($s: ID!, $t: ID!) { createThread(sessionId: $s, id: $t) { id } }",
        s=session_id,
        t=thread_id,
    )
    graphql_data(
        server,
        'mutation($s: ID!) { sendMessage(sessionId: $s, content: "hello") { id } }',
        s=session_id,
    )
    wait_idle(server, session_id)
    graphql_data(
        server,
        "mutation($id: ID!) { createSession(id: $id) { id } }",
        beta_cli_key,
        id=other_session,
    )
    graphql_data(
        server,
        "mutation($s: ID!, $t: ID!) { createThread(sessionId: $s, id: $t) { id } }",
        beta_cli_key,
        s=other_session,
        t=other_thread,
    )
    return World(session_id, thread_id, other_thread, started)


# -- what is stored, read straight from the database ------------------------------------


async def _stored(url: str, world: World, ids: list[str]) -> dict[str, Any]:
    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        touched = "= ANY($1::uuid[])"
        return {
            "sessions": [
                dict(row)
                for row in await connection.fetch(
                    f"SELECT * FROM sessions WHERE id {touched} ORDER BY id", ids
                )
            ],
            "threads": [
                dict(row)
                for row in await connection.fetch(
                    f"SELECT * FROM threads WHERE id {touched} OR session_id {touched} ORDER BY id",
                    ids,
                )
            ],
            "messages": [
                tuple(row)
                for row in await connection.fetch(
                    f"SELECT id, seq, content FROM messages WHERE session_id {touched} ORDER BY id",
                    ids,
                )
            ],
            "system_events": await connection.fetchval(
                f"SELECT count(*) FROM system_events WHERE session_id {touched}", ids
            ),
            "turns": await connection.fetchval(
                f"SELECT count(*) FROM turns WHERE session_id {touched}", ids
            ),
            # Anything created anywhere since the world was made (only the world's own
            # calls create; the janitor only deletes expired rows).
            "new_sessions": await connection.fetchval(
                "SELECT count(*) FROM sessions WHERE created_at > $1", world.started
            ),
            "new_threads": await connection.fetchval(
                "SELECT count(*) FROM threads WHERE created_at > $1", world.started
            ),
        }
    finally:
        await connection.close()


def stored(live_env: dict[str, str], world: World, ids: list[str]) -> dict[str, Any]:
    return asyncio.run(_stored(live_env["DATABASE_URL"], world, ids))


# -- bad calls ------------------------------------------------------------------------

BAD_WALLETS = ["alice", "0x123", "0x" + "g" * 40, " "]
TOO_BIG = 70_000  # past the 64 KiB a JSON object may hold
BAD_STATES: list[Any] = [[1, 2], "text", 5, "too big"]
BAD_CONTENT = ["", "   ", "a\x00b", "x" * 40_000]
BAD_TITLES = ["", "   ", "t" * 201]


def bad_state(example: Any) -> Any:
    """The example, with "too big" made big only here (it keeps reports short)."""
    return {"big": "x" * TOO_BIG} if example == "too big" else example


@dataclass(frozen=True)
class Call:
    """One request that must fail: over GraphQL (`query`) or REST (`method`)."""

    name: str
    query: str | None = None
    variables: dict[str, Any] | None = None
    method: str = "POST"
    path: str = ""
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None
    body: Any = None

    def ids(self) -> list[str]:
        """Every id the call names: the rows it could touch."""
        text = json.dumps([self.variables, self.headers, self.params, self.body, self.path])
        return UUID_PATTERN.findall(text)


UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


SEND = """mutation($s: ID!, $c: String!, $t: ID, $u: JSON, $w: String) {
  sendMessage(sessionId: $s, content: $c, threadId: $t, userState: $u, publicKey: $w) { id } }"""


@st.composite
def bad_send(draw: st.DrawFn, world: World) -> Call:
    """sendMessage that must fail: a session id taken by a thread, or at least one bad
    argument (the others valid or absent)."""
    fresh = new_id()
    session = draw(
        st.sampled_from([world.session_id, fresh, world.thread_id, world.other_app_thread_id])
    )
    collides = session in (world.thread_id, world.other_app_thread_id)
    # A thread of the world's session is valid there, and wrong anywhere else.
    wrong_threads = [new_id(), world.other_app_thread_id]
    if session != world.session_id:
        wrong_threads.append(world.thread_id)
    broken = draw(
        st.sets(
            st.sampled_from(["content", "state", "thread", "wallet"]), min_size=0 if collides else 1
        )
    )
    variables: dict[str, Any] = {
        "s": session,
        "c": draw(st.sampled_from(BAD_CONTENT)) if "content" in broken else "fine",
    }
    if "wallet" in broken:
        variables["w"] = draw(st.sampled_from(BAD_WALLETS))
    elif draw(st.booleans()):
        variables["w"] = new_wallet()
    if "state" in broken:
        variables["u"] = bad_state(draw(st.sampled_from(BAD_STATES)))
    elif draw(st.booleans()):
        variables["u"] = {"chain": "other"}
    if "thread" in broken:
        variables["t"] = draw(st.sampled_from(wrong_threads))
    return Call("sendMessage", SEND, variables)


@st.composite
def bad_rest_chat(draw: st.DrawFn, world: World) -> Call:
    session = draw(
        st.sampled_from([world.session_id, new_id(), world.thread_id, world.other_app_thread_id])
    )
    collides = session in (world.thread_id, world.other_app_thread_id)
    params: dict[str, str] = {"message": "fine"}
    kind = draw(st.sampled_from(["wallet", "state", "message", *(["none"] if collides else [])]))
    if kind == "wallet":
        params["public_key"] = draw(st.sampled_from(BAD_WALLETS[:3]))
    elif kind == "state":
        params["user_state"] = draw(st.sampled_from(["[1,2]", "{not json", '"text"']))
    elif kind == "message":
        params["message"] = draw(st.sampled_from(["", "   ", "x" * 40_000]))
    header = draw(st.sampled_from(["X-Session-Id", "X-Thread-Id"]))
    path = "/api/chat" if header == "X-Session-Id" else "/api/thread/chat"
    return Call("POST /api/chat", path=path, headers={header: session}, params=params)


def simple_calls(world: World) -> st.SearchStrategy[Call]:
    s, t, other = world.session_id, world.thread_id, world.other_app_thread_id
    return st.one_of(
        st.builds(
            lambda sid, w: Call(
                "createSession",
                "mutation($id: ID, $w: String) { createSession(id: $id, publicKey: $w) { id } }",
                {"id": sid, "w": w},
            ),
            st.sampled_from([t, other]),
            st.sampled_from([*BAD_WALLETS, None]),
        ),
        st.builds(
            lambda w: Call(
                "createSession",
                "mutation($id: ID, $w: String) { createSession(id: $id, publicKey: $w) { id } }",
                {"id": new_id(), "w": w},
            ),
            st.sampled_from(BAD_WALLETS),
        ),
        st.builds(
            lambda tid, title: Call(
                "createThread",
                "mutation($s: ID!, $t: ID, $title: String) "
                "{ createThread(sessionId: $s, id: $t, title: $title) { id } }",
                {"s": s, "t": tid, "title": title},
            ),
            st.sampled_from([s, t, other]),
            st.sampled_from([None, "ok"]),
        ),
        st.builds(
            lambda w: Call(
                "bindWallet",
                "mutation($s: ID!, $w: String) { bindWallet(sessionId: $s, publicKey: $w) { id } }",
                {"s": s, "w": w},
            ),
            st.sampled_from(BAD_WALLETS),
        ),
        st.builds(
            lambda u: Call(
                "updateUserState",
                "mutation($s: ID!, $u: JSON) { updateUserState(sessionId: $s, userState: $u) "
                "{ id } }",
                {"s": s, "u": bad_state(u)},
            ),
            st.sampled_from(BAD_STATES),
        ),
        st.builds(
            lambda title: Call(
                "renameSession",
                "mutation($s: ID!, $t: String!) { renameSession(id: $s, title: $t) { id } }",
                {"s": s, "t": title},
            ),
            st.sampled_from(BAD_TITLES),
        ),
        st.builds(
            lambda m: Call(
                "selectModel",
                "mutation($s: ID!, $m: String!) { selectModel(sessionId: $s, model: $m) { id } }",
                {"s": s, "m": m},
            ),
            st.sampled_from(["gpt-9", "", "builtin-large"]),
        ),
        st.builds(
            lambda m: Call(
                "postSystemNotice",
                "mutation($s: ID!, $m: String!) { postSystemNotice(sessionId: $s, message: $m) "
                "{ id } }",
                {"s": s, "m": m},
            ),
            st.sampled_from(["", "  ", "n" * 4_001]),
        ),
        st.builds(
            lambda m: Call(
                "updateMetadata",
                "mutation($s: ID!, $m: JSON!) { updateMetadata(sessionId: $s, metadata: $m) "
                "{ id } }",
                {"s": s, "m": bad_state(m)},
            ),
            st.sampled_from(BAD_STATES),
        ),
        st.builds(
            lambda sid, body: Call(
                "POST /api/sessions", path="/api/sessions", headers={"X-Session-Id": sid}, body=body
            ),
            st.sampled_from([t, other]),
            st.sampled_from([{"public_key": "alice"}, {"public_key": 5}, None]),
        ),
        st.builds(
            lambda body: Call(
                "POST /api/sessions",
                path="/api/sessions",
                headers={"X-Session-Id": new_id()},
                body=body,
            ),
            st.sampled_from([{"public_key": "alice"}, {"public_key": 5}, [1]]),
        ),
        st.builds(
            lambda title: Call(
                "PATCH /api/sessions", method="PATCH", path=f"/api/sessions/{s}", body=title
            ),
            st.sampled_from([{"title": ""}, {"title": "t" * 201}, {"nope": 1}, [1]]),
        ),
        st.builds(
            lambda m: Call(
                "POST /api/system",
                path="/api/system",
                headers={"X-Session-Id": s},
                params={"message": m},
            ),
            st.sampled_from(["", "   ", "n" * 4_001]),
        ),
    )


def send(server: ServerProcess, call: Call) -> tuple[bool, Any]:
    """(whether it failed as a client error, what came back)."""
    if call.query is not None:
        body = graphql(server, call.query, **(call.variables or {}))
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        return bool(codes) and codes <= GRAPHQL_CODES and not body.get("data"), body
    response = httpx.request(
        call.method,
        f"{server.url}{call.path}",
        headers=call.headers,
        params=call.params,
        json=call.body,
        timeout=10,
    )
    return response.status_code in REST_STATUSES, (response.status_code, response.text[:300])


def test_a_failed_call_changes_nothing(
    server: ServerProcess, live_env: dict[str, str], world: World
) -> None:
    @given(call=st.one_of(bad_send(world), bad_rest_chat(world), simple_calls(world)))
    @settings(
        max_examples=120,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(call: Call) -> None:
        ids = [*world.known_ids, *call.ids()]
        before = stored(live_env, world, ids)
        failed, answer = send(server, call)
        assert failed, (call, answer)
        assert stored(live_env, world, ids) == before, (call, answer)

    check()


# -- the cases by name -------------------------------------------------------------


def test_ids_that_collide_with_a_thread_are_a_conflict(
    server: ServerProcess, world: World, beta_cli_key: str
) -> None:
    for thread in (world.thread_id, world.other_app_thread_id):
        created = graphql(server, "mutation($id: ID!) { createSession(id: $id) { id } }", id=thread)
        assert created["errors"][0]["extensions"]["code"] == "CONFLICT", created
        sent = graphql(server, SEND, s=thread, c="hi")
        assert sent["errors"][0]["extensions"]["code"] == "CONFLICT", sent
        for path, header in (("/api/chat", "X-Session-Id"), ("/api/thread/chat", "X-Thread-Id")):
            response = httpx.post(
                f"{server.url}{path}", headers={header: thread}, params={"message": "hi"}
            )
            assert response.status_code == 409, response.text
            assert "thread" in response.json()["error"]
        response = httpx.post(f"{server.url}/api/sessions", headers={"X-Session-Id": thread})
        assert response.status_code == 409, response.text


def test_a_full_queue_changes_nothing(
    server: ServerProcess, live_env: dict[str, str], world: World, gamma_cli_key: str
) -> None:
    session_id = new_id()
    for content in ("/slow 20 busy", "first waiting", "second waiting"):  # queue_limit 2
        graphql_data(server, SEND, gamma_cli_key, s=session_id, c=content)
    ids = [session_id]
    before = stored(live_env, world, ids)
    body = graphql(
        server,
        SEND,
        gamma_cli_key,
        s=session_id,
        c="one too many",
        u={"chain": "changed"},
        w=new_wallet(),
    )
    assert body["errors"][0]["extensions"]["code"] == "QUEUE_FULL", body
    assert stored(live_env, world, ids) == before
    graphql_data(
        server, "mutation($s: ID!) { interrupt(sessionId: $s) { id } }", gamma_cli_key, s=session_id
    )


def test_a_thread_of_another_session_is_not_found_and_creates_nothing(
    server: ServerProcess, live_env: dict[str, str], world: World
) -> None:
    fresh = str(uuid4())
    before = stored(live_env, world, [fresh, *world.known_ids])
    body = graphql(
        server, SEND, s=fresh, c="hi", t=world.thread_id, w=new_wallet(), u={"chain": "base"}
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    assert stored(live_env, world, [fresh, *world.known_ids]) == before
