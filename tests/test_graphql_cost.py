"""The cost limit and the response size bound, as a client meets them.

Every operation's cost (about the number of fields it may resolve: page sizes
multiply, see schema/cost.py) is known before it runs: over the limit it is refused
without running, otherwise the answer reports it in `extensions.cost`. An answer
whose encoding is over the byte bound becomes a RESPONSE_TOO_LARGE error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from starlette.applications import Starlette

import server as server_module
from schema.response_limit import refusal
from settings import Settings
from tests.conftest import GraphQLClient, new_id, started
from tests.live import LEGACY_WS, TRANSPORT_WS, Collector, ws_session
from tests.processes import ServerProcess

# 30 aliases (the alias limit) of 200 sessions x 200 messages: about 2.5 KB of text
# asking for 1.2 million messages.
AMPLIFIED = (
    "{"
    + " ".join(
        f"s{n}:sessions(first:200){{nodes{{messages(first:200)"
        "{nodes{id content role createdAt}}}}"
        for n in range(30)
    )
    + "}"
)
SNAPSHOT = (
    "query($id: ID!) { session(id: $id) { title messages(last: 20) { nodes { id content } } } }"
)
PAGED = "query($n: Int!) { sessions(first: $n) { nodes { id title } } }"
CREATE = "mutation($id: ID!, $t: String) { createSession(id: $id, title: $t) { id } }"
EVENTS = "subscription($id: ID!) { sessionEvents(sessionId: $id) { cursor type sessionId app } }"


async def test_an_answer_reports_its_cost(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE, id=session_id)
    body = await gql.raw(SNAPSHOT, id=session_id)
    assert "errors" not in body
    # session, title, messages, nodes, and 20 x (id, content): the model's example.
    assert body["extensions"] == {"cost": {"requested": 44, "maximum": 20_000}}


async def test_a_page_variable_changes_the_cost(gql: GraphQLClient) -> None:
    # sessions, nodes, and n x (id, title)
    costs = [(await gql.raw(PAGED, n=n))["extensions"]["cost"]["requested"] for n in (10, 100)]
    assert costs == [22, 202]
    again = await gql.raw(PAGED, n=10)  # the same document, remembered per value
    assert again["extensions"]["cost"]["requested"] == 22
    absent = await gql.raw("query($n: Int) { sessions(first: $n) { nodes { id } } }")
    assert absent["extensions"]["cost"]["requested"] == 2 + 50  # the schema's default page


async def test_alias_amplification_is_refused_before_it_runs(
    app: Starlette, gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []

    async def listing(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise AssertionError("an operation over the cost limit ran")

    monkeypatch.setattr(app.state.runtime.conversations, "list_sessions", listing)
    assert 2_000 < len(AMPLIFIED) < 3_000
    body = await gql.raw(AMPLIFIED)
    assert body["data"] is None
    [error] = body["errors"]
    assert "cost" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["extensions"]["maxCost"] == 20_000
    assert error["extensions"]["cost"] > 1_000_000
    assert calls == []


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Starlette]:
    """An app with a cost limit of 30 and a response bound of 600 bytes."""
    application = server_module.create_app(
        settings.with_overrides(graphql_max_cost=30, graphql_max_response_bytes=600)
    )
    async with started(application):
        yield application


@pytest.fixture
async def limited_gql(limited: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield GraphQLClient(http)


async def test_the_cost_limit_is_a_setting(limited_gql: GraphQLClient) -> None:
    within = await limited_gql.raw(PAGED, n=14)  # 2 + 14 x 2 = 30
    assert within["extensions"]["cost"] == {"requested": 30, "maximum": 30}
    over = await limited_gql.error(PAGED, n=15)
    assert over["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED", "cost": 32, "maxCost": 30}


async def test_a_response_over_the_byte_bound_is_refused(limited_gql: GraphQLClient) -> None:
    for n in range(6):
        await limited_gql.data(CREATE, id=new_id(), t=f"session {n} " + "x" * 80)
    body = await limited_gql.raw(PAGED, n=10)  # within the cost, six long titles
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RESPONSE_TOO_LARGE"
    assert error["extensions"]["size"] > error["extensions"]["maxSize"] == 600
    assert body["extensions"]["cost"]["requested"] == 22
    assert (await limited_gql.data(PAGED, n=2))["sessions"]["nodes"]  # a smaller page fits


def test_a_refusal_keeps_the_frame_of_the_answer_it_replaces() -> None:
    answer = {"data": {"models": ["x" * 50]}, "extensions": {"cost": {"requested": 1}}}
    refused: Any = refusal(answer, 90, 10)
    assert refused["data"] is None
    assert refused["extensions"] == answer["extensions"]
    [error] = refused["errors"]
    assert error["extensions"] == {"code": "RESPONSE_TOO_LARGE", "size": 90, "maxSize": 10}
    # graphql-transport-ws `next`, graphql-ws `data` and multipart parts carry a payload.
    frame = {"id": "1", "type": "next", "payload": answer}
    assert refusal(frame, 90, 10) == {"id": "1", "type": "next", "payload": refusal({}, 90, 10)}
    errors = {"id": "1", "type": "error", "payload": [{"message": "x" * 50}]}
    refused_errors: Any = refusal(errors, 90, 10)
    assert refused_errors["payload"] == [error]
    assert refusal([answer, answer], 90, 10) == [refused, refused]  # a batch


@pytest.fixture(scope="module")
def cheap_server(
    live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real server whose cost limit (4) is below that of the subscription used here."""
    process = ServerProcess(
        {**live_env, "CONFAB_GRAPHQL_MAX_COST": "4"},
        tmp_path_factory.mktemp("cheap") / "server.log",
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscription_over_the_cost_limit_is_refused(
    cheap_server: ServerProcess, protocol: str
) -> None:
    async with ws_session(cheap_server, protocol=protocol) as ws:
        events = Collector(ws, EVENTS, id=new_id())  # 1 + 4 fields: cost 5
        error = await events.wait_closed()
    assert isinstance(error, TransportQueryError), error
    [refusal] = error.errors or []
    assert refusal["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED", "cost": 5, "maxCost": 4}


async def test_queries_over_a_websocket_are_costed_too(cheap_server: ServerProcess) -> None:
    async with ws_session(cheap_server) as ws:
        answer = await ws.execute(GraphQLRequest("{ models }"), get_execution_result=True)
        assert answer.extensions == {"cost": {"requested": 1, "maximum": 4}}
        with pytest.raises(TransportQueryError) as refused:
            await ws.execute(GraphQLRequest("{ sessions(first: 3) { nodes { id } } }"))
    errors: list[dict[str, Any]] = refused.value.errors or []
    assert [e["extensions"] for e in errors] == [
        {"code": "GRAPHQL_VALIDATION_FAILED", "cost": 5, "maxCost": 4}
    ]


@pytest.fixture(scope="module")
def small_answers_server(
    live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A real server whose answers may be at most 600 bytes."""
    process = ServerProcess(
        {**live_env, "CONFAB_GRAPHQL_MAX_RESPONSE_BYTES": "600"},
        tmp_path_factory.mktemp("small") / "server.log",
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


async def test_a_live_event_over_the_byte_bound_is_refused(
    small_answers_server: ServerProcess,
) -> None:
    from tests.live import post

    session_id = new_id()
    await post(small_answers_server, CREATE, id=session_id)
    rename = 'mutation($id: ID!) { renameSession(id: $id, title: "t") { id } }'
    notice = (
        "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"
    )
    async with ws_session(small_answers_server) as ws:
        events = Collector(
            ws,
            "subscription($id: ID!) { sessionEvents(sessionId: $id) { type data } }",
            id=session_id,
        )
        while not events.results:  # subscribed once a small event arrives
            await post(small_answers_server, rename, id=session_id)
            with contextlib.suppress(TimeoutError):
                await events.wait_for(1, timeout=0.5)
        await post(small_answers_server, notice, id=session_id, m="n" * 1_000)
        error = await events.wait_closed()
    assert isinstance(error, TransportQueryError), error
    [refused] = error.errors or []
    assert refused["extensions"]["code"] == "RESPONSE_TOO_LARGE"
