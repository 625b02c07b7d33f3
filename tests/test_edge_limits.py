"""Bounded requests, as a client meets them against a real server process: a body
over its route's limit is refused (413) before the server reads it whole, JSON
nested deeper than the limit is refused (400) before anything parses it, and a
WebSocket message over the limit closes the socket (1009). After each, the server
still serves."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from settings import Settings
from tests.edge_clients import MiB, oversized_upload, rss_kib
from tests.processes import ServerProcess, running

GRAPHQL_LIMIT = Settings.graphql_max_body_bytes
REST_LIMIT = Settings.rest_max_body_bytes
DEPTH = Settings.json_max_depth
WS_LIMIT = Settings.ws_max_message_bytes

CREATE = "mutation($id: ID!, $m: JSON) { createSession(id: $id, metadata: $m) { id } }"
READ_METADATA = "query($id: ID!) { session(id: $id) { metadata } }"
MODELS = {"models": ["builtin"]}


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("edge")
    with running({"DATABASE_URL": f"sqlite://{root / 'edge.sqlite3'}"}, root / "log") as process:
        yield process


@pytest.fixture
async def http(edge_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge_server.url, timeout=30) as client:
        yield client


def nested(depth: int, leaf: Any = 1) -> Any:
    """A value whose objects and arrays nest `depth` levels (0: the leaf), an
    object outermost."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if (depth - level) % 2 else [value]
    return value


def deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


def sized(template: dict[str, Any], size: int) -> bytes:
    """`template` as JSON with its "pad" string grown so the whole is `size` bytes."""
    body = json.dumps({**template, "pad": ""}).encode()
    return json.dumps({**template, "pad": "x" * (size - len(body))}).encode()


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """The body sent with `Transfer-Encoding: chunked` (httpx does, for an iterator)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def as_sent(body: bytes, framing: str) -> bytes | AsyncIterator[bytes]:
    return body if framing == "length" else chunks(body)


# -- body size ------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_huge_bodies_are_refused_before_they_are_read(
    edge_server: ServerProcess, chunked: bool
) -> None:
    pid = edge_server.process.pid
    edge_server.graphql("{ models }")
    rss_before, hwm_before = rss_kib(pid)
    samples: list[int] = []

    async def sample() -> None:
        while True:
            samples.append(rss_kib(pid)[0])
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    session = {"X-Session-Id": str(uuid.uuid4())}
    uploads = [
        oversized_upload(edge_server.port, path, 100 * MiB, chunked=chunked, headers=session)
        for path in ("/graphql", "/api/chat")
        for _ in range(5)
    ]
    try:
        results = await asyncio.gather(*uploads)
    finally:
        sampler.cancel()
    rss_after, hwm_after = rss_kib(pid)

    for (response, closed), limit in zip(
        results, [GRAPHQL_LIMIT] * 5 + [REST_LIMIT] * 5, strict=True
    ):
        assert response.status == 413, response
        assert str(limit) in response.body.decode()
        # Announced: closed at once. Chunked: the server drops a few MiB more
        # (so a client still sending can read the answer), then closes.
        assert response.headers.get("connection") == (None if chunked else "close")
        assert closed, "the connection stays open while the client sends 100 MB"
    graphql_error = json.loads(results[0][0].body)["errors"][0]
    assert graphql_error["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert set(json.loads(results[-1][0].body)) == {"error"}

    peak = max([*samples, rss_after, hwm_after if hwm_after > hwm_before else 0])
    growth_mib = (peak - rss_before) / 1024
    print(f"RSS {rss_before} KiB -> peak {peak} KiB: +{growth_mib:.1f} MiB for 10 x 100 MB")
    assert growth_mib < 50
    assert edge_server.graphql("{ models }")["data"] == MODELS


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_graphql_body_at_the_limit_is_read_and_one_byte_more_is_not(
    http: httpx.AsyncClient, framing: str
) -> None:
    template = {"query": "{ models }", "variables": {}}
    at_limit = sized(template, GRAPHQL_LIMIT)
    assert len(at_limit) == GRAPHQL_LIMIT
    headers = {"Content-Type": "application/json"}

    response = await http.post("/graphql", content=as_sent(at_limit, framing), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == MODELS

    over = sized(template, GRAPHQL_LIMIT + 1)
    response = await http.post("/graphql", content=as_sent(over, framing), headers=headers)
    assert response.status_code == 413
    assert response.json() == {
        "errors": [
            {
                "message": f"the request body is larger than {GRAPHQL_LIMIT} bytes",
                "extensions": {"code": "REQUEST_TOO_LARGE", "maxSize": GRAPHQL_LIMIT},
            }
        ]
    }


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_rest_body_at_the_limit_is_read_and_one_byte_more_is_not(
    http: httpx.AsyncClient, framing: str
) -> None:
    headers = {"Content-Type": "application/json", "X-Session-Id": str(uuid.uuid4())}
    at_limit = sized({"message": "hello at the limit"}, REST_LIMIT)
    assert len(at_limit) == REST_LIMIT

    response = await http.post("/api/chat", content=as_sent(at_limit, framing), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["messages"][0]["content"] == "hello at the limit"

    over = sized({"message": "one byte too many"}, REST_LIMIT + 1)
    # From a browser: the refusal carries the CORS header, so the page can read it.
    browser = {**headers, "Origin": "https://app.example"}
    response = await http.post("/api/chat", content=as_sent(over, framing), headers=browser)
    assert response.status_code == 413
    assert response.json() == {"error": f"the request body is larger than {REST_LIMIT} bytes"}
    assert response.headers["access-control-allow-origin"] == "*"


# -- JSON depth -----------------------------------------------------------------


def graphql_too_deep(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "JSON_TOO_DEEP", "maxDepth": DEPTH}
    assert f"{DEPTH} levels" in error["message"]


async def test_json_nested_5000_deep_is_refused_naming_the_limit(
    http: httpx.AsyncClient, edge_server: ServerProcess
) -> None:
    deep = deep_text(5000)
    body = '{"query": "{ models }", "variables": {"v": ' + deep + "}}"
    graphql_too_deep(
        await http.post("/graphql", content=body, headers={"Content-Type": "application/json"})
    )
    graphql_too_deep(await http.get("/graphql", params={"query": "{ models }", "variables": deep}))
    graphql_too_deep(await http.get("/graphql", params={"query": "{ models }", "extensions": deep}))

    session = {"X-Session-Id": str(uuid.uuid4()), "Content-Type": "application/json"}
    rest_body = '{"message": "hi", "extra": ' + deep + "}"
    response = await http.post("/api/chat", content=rest_body, headers=session)
    assert response.status_code == 400
    assert response.json() == {"error": f"JSON nested deeper than {DEPTH} levels"}
    response = await http.get("/api/state", params={"user_state": deep}, headers=session)
    assert response.status_code == 400
    assert response.json() == {"error": f"JSON nested deeper than {DEPTH} levels"}

    # Unclosed brackets are as deep as closed ones.
    response = await http.post("/api/chat", content="[" * 5000, headers=session)
    assert response.status_code == 400
    assert edge_server.graphql("{ models }")["data"] == MODELS


async def test_json_at_the_depth_limit_is_parsed_and_one_level_more_is_not(
    http: httpx.AsyncClient,
) -> None:
    # The body is one level, `variables` a second: metadata 62 deep makes 64.
    session_id = str(uuid.uuid4())
    metadata = nested(DEPTH - 2)
    body = {"query": CREATE, "variables": {"id": session_id, "m": metadata}}
    response = await http.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.json()
    read = {"query": READ_METADATA, "variables": {"id": session_id}}
    stored = (await http.post("/graphql", json=read)).json()["data"]["session"]["metadata"]
    assert stored == metadata

    deeper = {"query": CREATE, "variables": {"id": str(uuid.uuid4()), "m": nested(DEPTH - 1)}}
    graphql_too_deep(await http.post("/graphql", json=deeper))

    # GET: the `variables` parameter is its own JSON text (undeclared ones are ignored).
    at_limit = json.dumps({"pad": nested(DEPTH - 1)})
    response = await http.get("/graphql", params={"query": "{ models }", "variables": at_limit})
    assert response.status_code == 200, response.text
    assert response.json()["data"] == MODELS
    over = json.dumps({"pad": nested(DEPTH)})
    graphql_too_deep(await http.get("/graphql", params={"query": "{ models }", "variables": over}))

    # REST: user_state (its own JSON text) at the limit is kept as sent.
    headers = {"X-Session-Id": str(uuid.uuid4())}
    state = {"pad": nested(DEPTH - 1)}
    response = await http.post(
        "/api/chat", params={"message": "hi", "user_state": json.dumps(state)}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["user_state"]["pad"] == state["pad"]
    rest_over = {"message": "hi", "pad": nested(DEPTH)}
    response = await http.post("/api/chat", json=rest_over, headers=headers)
    assert response.status_code == 400


async def test_brackets_inside_strings_do_not_count(http: httpx.AsyncClient) -> None:
    session_id = str(uuid.uuid4())
    # Escaped quotes and backslashes do not end the string early.
    metadata = {"text": '\\"' + "[" * 5000 + '"\\', "more": "{" * 5000}
    body = {"query": CREATE, "variables": {"id": session_id, "m": metadata}}
    response = await http.post("/graphql", json=body)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.json()
    read = {"query": READ_METADATA, "variables": {"id": session_id}}
    stored = (await http.post("/graphql", json=read)).json()["data"]["session"]["metadata"]
    assert stored == metadata


# -- WebSocket messages ---------------------------------------------------------


def ping(size: int) -> str:
    """A graphql-transport-ws ping of exactly `size` bytes."""
    empty = json.dumps({"type": "ping", "payload": {"pad": ""}})
    return json.dumps({"type": "ping", "payload": {"pad": "x" * (size - len(empty))}})


async def test_a_websocket_message_over_the_limit_closes_the_socket_with_1009(
    edge_server: ServerProcess,
) -> None:
    url = f"ws://127.0.0.1:{edge_server.port}/graphql"
    protocol = [Subprotocol("graphql-transport-ws")]
    async with connect(url, subprotocols=protocol, max_size=None, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"

        at_limit = ping(WS_LIMIT)
        assert len(at_limit) == WS_LIMIT
        await ws.send(at_limit)
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "pong"

        started = time.monotonic()
        await ws.send(ping(WS_LIMIT + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009, closed.value
        print(f"closed with 1009 after {time.monotonic() - started:.3f} s")

    assert edge_server.graphql("{ models }")["data"] == MODELS


async def test_a_websocket_message_nested_too_deep_closes_the_socket_with_4400(
    edge_server: ServerProcess,
) -> None:
    url = f"ws://127.0.0.1:{edge_server.port}/graphql"
    protocol = [Subprotocol("graphql-transport-ws")]
    async with connect(url, subprotocols=protocol, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        # At the limit (the message itself is one level): answered.
        await ws.send(json.dumps({"type": "ping", "payload": nested(DEPTH - 1)}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "pong"

        await ws.send('{"type": "ping", "payload": ' + deep_text(5000) + "}")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400
        assert closed.value.rcvd.reason == f"JSON nested deeper than {DEPTH} levels"

    assert edge_server.graphql("{ models }")["data"] == MODELS


def test_the_server_logs_nothing_unexpected(edge_server: ServerProcess) -> None:
    """Every refusal above was an answer, not an accident."""
    log = edge_server.log()
    assert "Traceback" not in log, log
    assert "Exception in ASGI application" not in log, log
