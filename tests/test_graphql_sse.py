"""GraphQL over SSE (the graphql-sse protocol) on /graphql, in both of its modes.

The npm `graphql-sse` client drives a real server process as a frontend would:
`distinct` opens one event stream per operation, `single` reserves one stream
(PUT), opens it (GET) and runs every operation on it (POST, DELETE to stop). What a
client library never sends (malformed bodies, unknown tokens, a second reader) is
sent raw with httpx. The module's server runs on PostgreSQL and Redis with
CONFAB_WS_MAX_SUBSCRIPTIONS=3 and CONFAB_WS_INIT_TIMEOUT=1 (the time a reserved
stream has to be opened); one test runs the embedded default (SQLite, memory bus).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import new_id
from tests.live import cli, post, wait_for_subscribers
from tests.node_tools import run_node
from tests.processes import ServerProcess

MODES = ["distinct", "single"]
TOKEN = "X-GraphQL-Event-Stream-Token"
SSE = {"Accept": "text/event-stream"}
CREATE = "mutation($id: ID!) { createSession(id: $id) { id } }"
NOTICE = "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"
NOTICES = "subscription($id: ID!) { systemNotice(sessionId: $id) { cursor message } }"
DEADLINE = 20.0  # generous: a CLI revocation is noticed within the key cache time (2 s)

# Shared by every script: argv is [base url, mode, app key or "", ...args].
PRELUDE = r"""
const { createClient } = require('graphql-sse');
const [base, mode, key] = process.argv.slice(2, 5);
const args = process.argv.slice(5);
const out = (value) => console.log(JSON.stringify(value));
const EVENTS = `subscription($id: ID!, $after: String) {
  sessionEvents(sessionId: $id, after: $after) { cursor type data }
}`;
const NOTICES = 'subscription($id: ID!) { systemNotice(sessionId: $id) { cursor message } }';
const NOTICE = `mutation($id: ID!, $m: String!) {
  postSystemNotice(sessionId: $id, message: $m) { id }
}`;
function client(options = {}) {
  return createClient({
    url: base + '/graphql',
    singleConnection: mode === 'single',
    headers: key ? { 'AOMI-APP-KEY': key } : {},
    retryAttempts: 0,
    fetchFn: fetch,
    ...options,
  });
}
async function once(c, query, variables) {
  const results = [];
  for await (const result of c.iterate({ query, variables })) results.push(result);
  return results;
}
async function attempt(c, query, variables) {
  try {
    return { results: await once(c, query, variables) };
  } catch (error) {
    return { error: String(error && error.message ? error.message : error) };
  }
}
async function subscribers() {
  return (await (await fetch(base + '/readyz')).json()).events.subscribers;
}
async function until(condition) {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 25));
}
function main(body) {
  body().then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });
}
"""


def node(script: str, server: ServerProcess, mode: str, key: str | None, *args: str) -> Any:
    """Run a script; its output lines (JSON) merged into one dict."""
    result = run_node(PRELUDE + script, server.url, mode, key or "", *args, timeout=90)
    assert result.returncode == 0, f"{result.stderr}\n{result.stdout}\n{server.log()[-3000:]}"
    merged: dict[str, Any] = {}
    for line in result.stdout.splitlines():
        merged.update(json.loads(line))
    return merged


async def node_async(
    script: str, server: ServerProcess, mode: str, key: str | None, *args: str
) -> Any:
    return await asyncio.to_thread(node, script, server, mode, key, *args)


async def subscribers(server: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        return int((await http.get(f"{server.url}/readyz")).json()["events"]["subscribers"])


def subscribed(readyz: httpx.Response) -> int:
    return int(readyz.json()["events"]["subscribers"])


async def rendered_events(server: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        return int((await http.get(f"{server.url}/readyz")).json()["events"]["rendered"])


def codes(result: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in result.get("errors", [])]


# -- the npm client, both modes ----------------------------------------------------

TURN = r"""
main(async () => {
  const [id] = args;
  const c = client();
  const create = 'mutation($id: ID!) { createSession(id: $id) { id app } }';
  out({ created: await once(c, create, { id }) });
  out({ read: await once(c, 'query($id: ID!) { session(id: $id) { id app title } }', { id }) });
  const before = await subscribers();
  const events = [];
  const listening = (async () => {
    for await (const result of c.iterate({ query: EVENTS, variables: { id } })) {
      events.push(result);
      const event = result.data && result.data.sessionEvents;
      if (event && event.type === 'processing_changed' && !event.data.is_processing) break;
    }
  })();
  await until(async () => (await subscribers()) > before);
  const send = 'mutation($id: ID!) { sendMessage(sessionId: $id, content: "hello there") { id } }';
  out({ sent: await once(c, send, { id }) });
  await listening;
  out({ events });
  await until(async () => (await subscribers()) === before);  // stopping ends it
  c.dispose();
});
"""


@pytest.mark.parametrize("mode", MODES)
async def test_a_query_a_mutation_and_the_events_of_a_real_turn(
    server: ServerProcess, alpha_cli_key: str, mode: str
) -> None:
    session_id = new_id()
    seen = await node_async(TURN, server, mode, alpha_cli_key, session_id)
    [created] = seen["created"]
    assert created["data"] == {"createSession": {"id": session_id, "app": "alpha"}}
    [read] = seen["read"]
    assert read["data"]["session"] == {"id": session_id, "app": "alpha", "title": "New chat"}
    assert read["extensions"]["cost"]["maximum"] == 20_000  # the lean path's report
    assert [r["data"]["sendMessage"]["id"] for r in seen["sent"]] == [session_id]
    events = [r["data"]["sessionEvents"] for r in seen["events"]]
    types = [e["type"] for e in events]
    assert types[0] == "message_added"
    assert events[0]["data"]["message"]["content"] == "hello there"
    assert {"processing_changed", "message_delta"} <= set(types)
    replies = [e["data"]["message"] for e in events if e["type"] == "message_added"][1:]
    assert [m["role"] for m in replies] == ["assistant"]
    assert replies[0]["content"]
    cursors = [int(e["cursor"]) for e in events]
    assert cursors == sorted(set(cursors))


ANOTHER_APP = r"""
main(async () => {
  const [id] = args;
  const read = 'query($id: ID!) { session(id: $id) { id } }';
  out({ events: await attempt(client(), EVENTS, { id }) });
  out({ session: await attempt(client(), read, { id }) });
  const wrongApp = client({ headers: { 'AOMI-APP-KEY': key, 'X-Confab-App': 'alpha' } });
  out({ forbidden: await attempt(wrongApp, read, { id }) });
  const unknown = client({ headers: { 'AOMI-APP-KEY': 'cfb_nope_' + 'x'.repeat(32) } });
  out({ unknown: await attempt(unknown, read, { id }) });
});
"""


@pytest.mark.parametrize("mode", MODES)
async def test_another_apps_key_is_refused(
    server: ServerProcess, alpha_cli_key: str, beta_cli_key: str, mode: str
) -> None:
    session_id = new_id()
    await post(server, CREATE, key=alpha_cli_key, id=session_id)
    seen = await node_async(ANOTHER_APP, server, mode, beta_cli_key, session_id)
    # Another app's session is reported like a missing one, in both modes.
    [events] = seen["events"]["results"]
    assert codes(events) == ["NOT_FOUND"]
    assert [r["data"] for r in seen["session"]["results"]] == [{"session": None}]
    if mode == "distinct":  # the GraphQL error arrives on the stream
        assert codes(seen["forbidden"]["results"][0]) == ["FORBIDDEN"]
        assert codes(seen["unknown"]["results"][0]) == ["UNAUTHENTICATED"]
    else:  # the reservation (PUT) is refused: the client reports the status
        assert "403" in seen["forbidden"]["error"]
        assert "401" in seen["unknown"]["error"]


RESUME = r"""
main(async () => {
  const [id] = args;
  const c = client();
  const before = await subscribers();
  let first;
  const listening = (async () => {
    for await (const result of c.iterate({ query: EVENTS, variables: { id } })) {
      first = result.data.sessionEvents;
      break;
    }
  })();
  await until(async () => (await subscribers()) > before);
  await once(c, NOTICE, { id, m: 'm0' });
  await listening;
  await until(async () => (await subscribers()) === before);
  for (const m of ['m1', 'm2']) await once(c, NOTICE, { id, m });  // nobody listens
  const resumed = [];
  const again = (async () => {
    const resume = { query: EVENTS, variables: { id, after: first.cursor } };
    for await (const result of c.iterate(resume)) {
      resumed.push(result.data.sessionEvents);
      if (resumed.length === 2) await once(c, NOTICE, { id, m: 'm3' });
      if (resumed.length === 3) break;
    }
  })();
  await again;
  out({ first, resumed });
  c.dispose();
});
"""


@pytest.mark.parametrize("mode", MODES)
async def test_resume_with_after_gets_exactly_the_missed_events(
    server: ServerProcess, alpha_cli_key: str, mode: str
) -> None:
    session_id = new_id()
    await post(server, CREATE, key=alpha_cli_key, id=session_id)
    seen = await node_async(RESUME, server, mode, alpha_cli_key, session_id)
    assert seen["first"]["data"]["message"] == "m0"
    assert [e["data"]["message"] for e in seen["resumed"]] == ["m1", "m2", "m3"]
    cursors = [int(e["cursor"]) for e in seen["resumed"]]
    assert int(seen["first"]["cursor"]) < cursors[0]
    assert cursors == sorted(set(cursors))


LIMITS = r"""
main(async () => {
  const c = client();
  const aliases = Array.from({ length: 31 }, (_, n) => `a${n}: cursor`).join(' ');
  const wide = `subscription { sessionEvents(sessionId: "${args[0]}") { ${aliases} } }`;
  out({ aliases: await once(c, wide) });
  const costly = `{ sessions(first: 200) {
    nodes { messages(first: 200) { nodes { id content } } } } }`;
  out({ costly: await once(c, costly) });
  out({ syntax: await once(c, '{ apps { name ') });
  c.dispose();
});
"""


@pytest.mark.parametrize("mode", MODES)
async def test_the_document_limits_apply(server: ServerProcess, mode: str) -> None:
    seen = await node_async(LIMITS, server, mode, None, new_id())
    [aliases] = seen["aliases"]
    assert codes(aliases) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "alias" in aliases["errors"][0]["message"]
    [costly] = seen["costly"]
    assert costly["data"] is None
    assert costly["errors"][0]["extensions"]["maxCost"] == 20_000
    assert costly["errors"][0]["extensions"]["cost"] > 20_000
    assert codes(seen["syntax"][0]) == ["GRAPHQL_VALIDATION_FAILED"]


SUBSCRIPTION_LIMIT = r"""
main(async () => {
  const [id] = args;
  const c = client();
  const before = await subscribers();
  const held = [0, 1, 2].map(() => c.iterate({ query: NOTICES, variables: { id } }));
  await until(async () => (await subscribers()) === before + 3);
  out({ fourth: await once(c, NOTICES, { id }) });
  await held[0].return();
  await until(async () => (await subscribers()) === before + 2);
  const fifth = c.iterate({ query: NOTICES, variables: { id } });
  await until(async () => (await subscribers()) === before + 3);
  out({ fifth: 'live' });
  c.dispose();
});
"""


async def test_a_stream_holds_a_bounded_number_of_subscriptions(
    server: ServerProcess, alpha_cli_key: str
) -> None:
    seen = await node_async(SUBSCRIPTION_LIMIT, server, "single", alpha_cli_key, new_id())
    [refused] = seen["fourth"]
    assert refused["data"] is None
    assert codes(refused) == ["TOO_MANY_SUBSCRIPTIONS"]
    assert refused["errors"][0]["extensions"]["maxSubscriptions"] == 3
    assert seen["fifth"] == "live"  # stopping one makes room


REVOKED = r"""
main(async () => {
  const [id] = args;
  const c = client();
  out({ results: await attempt(c, NOTICES, { id }) });
  out({ after: await attempt(c, 'query($id: ID!) { session(id: $id) { id } }', { id }) });
});
"""


def new_key(env: dict[str, str]) -> tuple[str, str]:
    clear = cli(env, "keys", "create", "--app", "alpha", "--label", "sse-to-revoke")
    return clear, clear.rsplit("_", 1)[0]


@pytest.mark.parametrize("mode", MODES)
async def test_a_revoked_key_ends_its_streams(
    server: ServerProcess, live_env: dict[str, str], alpha_cli_key: str, mode: str
) -> None:
    doomed, prefix = new_key(live_env)
    session_id = new_id()
    await post(server, CREATE, key=alpha_cli_key, id=session_id)
    baseline = await subscribers(server)
    running = asyncio.create_task(node_async(REVOKED, server, mode, doomed, session_id))
    await wait_for_subscribers(server, baseline + 1, timeout=DEADLINE)
    await post(server, NOTICE, key=alpha_cli_key, id=session_id, m="before")
    cli(live_env, "keys", "revoke", prefix)
    seen = await asyncio.wait_for(running, DEADLINE * 3)
    first, last = seen["results"]["results"]  # the subscription completed: no error
    assert first["data"]["systemNotice"]["message"] == "before"
    assert last["data"] is None
    assert codes(last) == ["UNAUTHENTICATED"]
    assert "revoked" in last["errors"][0]["message"]
    if mode == "distinct":
        assert codes(seen["after"]["results"][0]) == ["UNAUTHENTICATED"]
    else:
        assert "401" in seen["after"]["error"]
    assert await subscribers(server) == baseline


SHUTDOWN = r"""
main(async () => {
  const [id] = args;
  const outcomes = await Promise.all(['distinct', 'single'].map(async (m) => {
    const c = client({ singleConnection: m === 'single' });
    return [m, await attempt(c, NOTICES, { id })];
  }));
  out(Object.fromEntries(outcomes));
});
"""


async def test_server_shutdown_ends_streams_promptly(
    live_env: dict[str, str], tmp_path: Path
) -> None:
    server = ServerProcess(live_env, tmp_path / "shutdown.log")
    server.wait_ready()
    running = asyncio.create_task(node_async(SHUTDOWN, server, "distinct", None, new_id()))
    await wait_for_subscribers(server, 2, timeout=DEADLINE)
    assert server.stop()  # graceful
    seen = await asyncio.wait_for(running, DEADLINE)
    log = server.log()
    # Nothing was left for uvicorn's graceful-shutdown timeout to cancel.
    assert "timeout graceful shutdown exceeded" not in log
    # No `complete`: the clients see a dropped connection, which they would retry.
    for mode in MODES:
        assert "error" in seen[mode], seen
    assert "Traceback" not in log


# -- raw HTTP: what a client library never sends --------------------------------------


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == code, error
    return str(error["message"])


async def test_bad_requests_get_a_clear_4xx_and_leave_the_server_unharmed(
    server: ServerProcess, alpha_cli_key: str, beta_cli_key: str
) -> None:
    alpha, beta = {"AOMI-APP-KEY": alpha_cli_key}, {"AOMI-APP-KEY": beta_cli_key}
    op = {"query": NOTICES, "variables": {"id": new_id()}, "extensions": {"operationId": "one"}}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        as_json = {**SSE, "Content-Type": "application/json"}
        bad = await http.post("/graphql", content=b'{"query": ', headers=as_json)
        assert "JSON" in refused(bad, 400, "BAD_REQUEST")
        refused(await http.post("/graphql", json=[op], headers=SSE), 400, "BAD_REQUEST")
        refused(
            await http.post("/graphql", json={"variables": {}}, headers=SSE), 400, "BAD_REQUEST"
        )
        unknown = await http.post("/graphql", json=op, headers={TOKEN: "no-such-token", **alpha})
        refused(unknown, 404, "NOT_FOUND")
        refused(await http.get("/graphql", headers={**SSE, TOKEN: "nope"}), 404, "NOT_FOUND")

        reserved = await http.put("/graphql", headers=alpha)
        assert reserved.status_code == 201
        mine = {TOKEN: reserved.text, **alpha}
        async with http.stream("GET", "/graphql", headers={**SSE, **mine}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            second = await http.get("/graphql", headers={**SSE, **mine})
            assert "already open" in refused(second, 409, "CONFLICT")
            assert (await http.post("/graphql", json=op, headers=mine)).status_code == 202
            refused(await http.post("/graphql", json=op, headers=mine), 409, "CONFLICT")
            no_id = {**op, "extensions": {}}
            refused(await http.post("/graphql", json=no_id, headers=mine), 400, "BAD_REQUEST")
            garbled = await http.post(
                "/graphql", content=b"{", headers={**mine, "Content-Type": "application/json"}
            )
            refused(garbled, 400, "BAD_REQUEST")
            stranger = await http.post("/graphql", json=op, headers={TOKEN: reserved.text, **beta})
            refused(stranger, 403, "FORBIDDEN")
            gone = await http.delete("/graphql", params={"operationId": "nope"}, headers=mine)
            refused(gone, 404, "NOT_FOUND")
            refused(await http.delete("/graphql", headers=mine), 400, "BAD_REQUEST")
            stopped = await http.delete("/graphql", params={"operationId": "one"}, headers=mine)
            assert stopped.status_code == 200
            baseline = await subscribers(server)
            left = {**op, "extensions": {"operationId": "left running"}}
            assert (await http.post("/graphql", json=left, headers=mine)).status_code == 202
            await wait_for_subscribers(server, baseline + 1, timeout=DEADLINE)
        # The stream is gone with its connection, and so is its subscription.
        await eventually(lambda: http.get("/readyz"), lambda r: subscribed(r) == baseline)
        after = await http.post("/graphql", json=op, headers=mine)
        refused(after, 404, "NOT_FOUND")
        assert (await http.get("/healthz")).text == "OK"
    assert await post(server, "{ apps { name } }") == {"apps": [{"name": "default"}]}


async def test_a_stream_opens_with_its_token_alone_and_hears_its_operations(
    server: ServerProcess, alpha_cli_key: str
) -> None:
    """An EventSource cannot send headers: the token in the URL is its ticket."""
    alpha = {"AOMI-APP-KEY": alpha_cli_key}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        token = (await http.put("/graphql", headers=alpha)).text
        async with http.stream("GET", "/graphql", params={"token": token}, headers=SSE) as stream:
            query = {"query": "{ apps { name } }", "extensions": {"operationId": "q"}}
            accepted = await http.post("/graphql", json=query, headers={TOKEN: token, **alpha})
            assert accepted.status_code == 202
            frames = await read_frames(stream, until="complete")
    assert frames[0] == ("next", {"id": "q", "payload": frames[0][1]["payload"]})
    assert "alpha" in [app["name"] for app in frames[0][1]["payload"]["data"]["apps"]]
    assert frames[-1] == ("complete", {"id": "q"})


async def read_frames(
    stream: httpx.Response, until: str, keepalive: bool = False
) -> list[tuple[str, Any]]:
    """SSE messages as (event, data) until the event named `until` (or, with
    `keepalive`, until a keep-alive comment)."""
    frames: list[tuple[str, Any]] = []
    event, data = "", ""
    async with asyncio.timeout(DEADLINE):
        async for line in stream.aiter_lines():
            if keepalive and line.startswith(": keep-alive"):
                return frames
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = line.partition(":")[2].strip()
            elif not line and event:
                frames.append((event, json.loads(data) if data else None))
                if event == until:
                    return frames
                event, data = "", ""
    raise AssertionError(f"the stream ended before {until!r}: {frames}")


async def eventually(
    request: Callable[[], Awaitable[httpx.Response]], done: Callable[[httpx.Response], bool]
) -> None:
    """Repeat the request until its answer is `done` (within the deadline)."""
    async with asyncio.timeout(DEADLINE):
        while True:
            if done(await request()):
                return
            await asyncio.sleep(0.05)


async def test_a_reservation_not_opened_in_time_expires(
    server: ServerProcess, alpha_cli_key: str
) -> None:
    alpha = {"AOMI-APP-KEY": alpha_cli_key}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        token = (await http.put("/graphql", headers=alpha)).text
        # While reserved, an empty operation is a 400; once expired, the token is unknown.
        named = {TOKEN: token, **alpha}
        await eventually(
            lambda: http.post("/graphql", json={}, headers=named), lambda r: r.status_code == 404
        )
        late = await http.get("/graphql", headers={**SSE, TOKEN: token, **alpha})
        refused(late, 404, "NOT_FOUND")


async def test_reservations_per_client_are_bounded(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answers = []
        for _ in range(40):
            answers.append(await http.put("/graphql"))
            if answers[-1].status_code != 201:
                break
        refused(answers[-1], 429, "TOO_MANY_STREAMS")
        assert answers[-1].json()["errors"][0]["extensions"]["maxStreams"] == 32
        assert len(answers) <= 33
        # Unopened reservations expire (after CONFAB_WS_INIT_TIMEOUT), making room.
        await eventually(lambda: http.put("/graphql"), lambda r: r.status_code == 201)


# -- the embedded default -------------------------------------------------------------


async def test_the_embedded_default_serves_both_modes(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite://{tmp_path / 'confab.sqlite3'}",
        "CONFAB_EVENT_BUS": "memory://",
        "CONFAB_SSE_KEEPALIVE": "0.2",
    }
    server = ServerProcess(env, tmp_path / "embedded.log")
    try:
        server.wait_ready()
        rendered = await rendered_events(server)
        for mode in MODES:
            session_id = new_id()
            seen = await node_async(TURN, server, mode, None, session_id)
            created = seen["created"][0]["data"]["createSession"]
            assert created == {"id": session_id, "app": "default"}
            types = [r["data"]["sessionEvents"]["type"] for r in seen["events"]]
            assert types[0] == "message_added"
            assert types[-1] == "processing_changed"
        # Each event was rendered once, by the shared path WebSocket subscribers take.
        assert await rendered_events(server) > rendered
        # Distinct mode over GET (as an EventSource would); idle, it hears keep-alives.
        params = {"query": NOTICES, "variables": json.dumps({"id": new_id()})}
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=10) as http,
            http.stream("GET", "/graphql", params=params, headers=SSE) as stream,
        ):
            assert stream.status_code == 200
            await read_frames(stream, until="", keepalive=True)
    finally:
        assert server.stop()


async def test_a_persisted_query_runs_by_its_hash_alone(server: ServerProcess) -> None:
    document = "query Models { models }"
    digest = hashlib.sha256(document.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    sse = {"Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=server.url, timeout=DEADLINE) as http:
        unknown = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
        async with http.stream("POST", "/graphql", json={"extensions": unknown}, headers=sse) as s:
            assert s.status_code == 200
            [(_, missing), _] = await read_frames(s, "complete")
        assert codes(missing) == ["PERSISTED_QUERY_NOT_FOUND"]

        registered = await http.post("/graphql", json={"query": document, "extensions": persisted})
        assert registered.json()["data"] == {"models": ["builtin"]}
        async with http.stream(
            "POST", "/graphql", json={"extensions": persisted}, headers=sse
        ) as s:
            [(event, answer), _] = await read_frames(s, "complete")
    assert event == "next"
    assert answer["data"] == {"models": ["builtin"]}
