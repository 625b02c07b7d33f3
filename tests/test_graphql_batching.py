"""Batched GraphQL over HTTP (a JSON array of operations), on real server processes.

Apollo Client's BatchHttpLink sends the batches a frontend would; httpx sends what no
client library does (items that are not operations, too many, none). Each operation
runs on its own, in order, with its own limits and cost; the module's server has the
default limit (10), a second one (embedded, SQLite) has batching off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import new_id
from tests.node_tools import run_node
from tests.processes import ServerProcess

CREATE = "mutation($id: ID!) { createSession(id: $id) { id title } }"
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id title } }"
READ = "query($id: ID!) { session(id: $id) { id title } }"
# 200 sessions x 200 messages x 2 fields: far over the default cost limit (20,000).
COSTLY = (
    "{ sessions(first: 200) { edges { node { messages(first: 200) { nodes { id content } } } } } }"
)
NOTICES = "subscription($id: ID!) { systemNotice(sessionId: $id) { message } }"


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def unbatched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("unbatched")
    env = {
        "DATABASE_URL": f"sqlite://{root / 'confab.sqlite3'}",
        "CONFAB_EVENT_BUS": "memory://",
        "CONFAB_GRAPHQL_BATCH_LIMIT": "0",
    }
    process = ServerProcess(env, root / "server.log")
    try:
        process.wait_ready()
        with httpx.Client(base_url=process.url, timeout=10) as client:
            yield client
    finally:
        process.stop()


def batch(http: httpx.Client, items: list[Any], key: str | None = None) -> httpx.Response:
    headers = {"AOMI-APP-KEY": key} if key else {}
    return http.post("/graphql", json=items, headers=headers)


def code(answer: dict[str, Any]) -> str:
    (error,) = answer["errors"]
    return str(error["extensions"]["code"])


def test_a_batch_answers_each_operation_in_order(http: httpx.Client, alpha_cli_key: str) -> None:
    session_id = new_id()
    response = batch(
        http,
        [
            {"query": CREATE, "variables": {"id": session_id}},
            {"query": RENAME, "variables": {"id": session_id, "t": "batched"}},
            {"query": READ, "variables": {"id": session_id}, "operationName": None},
        ],
        alpha_cli_key,
    )
    assert response.status_code == 200
    created, renamed, read = response.json()
    assert created["data"]["createSession"]["id"] == session_id
    assert renamed["data"]["renameSession"]["title"] == "batched"
    # In order: the read sees the rename before it.
    assert read["data"] == {"session": {"id": session_id, "title": "batched"}}
    assert all(answer["extensions"]["cost"]["requested"] > 0 for answer in response.json())


def test_each_operation_has_its_own_cost_and_limits(http: httpx.Client) -> None:
    # More aliases than the limit (30).
    aliased = "{ " + " ".join(f"a{n}: __typename" for n in range(31)) + " }"
    response = batch(
        http,
        [
            {"query": "{ __typename }"},
            {"query": COSTLY},
            {"query": "{ nope }"},
            {"query": aliased},
            {"query": "{ __typename }"},
        ],
    )
    assert response.status_code == 200
    ok, costly, invalid, too_many, fine = response.json()
    assert ok["data"] == fine["data"] == {"__typename": "Query"}
    assert code(costly) == "GRAPHQL_VALIDATION_FAILED"
    extensions = costly["errors"][0]["extensions"]
    assert extensions["cost"] > extensions["maxCost"]
    assert code(invalid) == "GRAPHQL_VALIDATION_FAILED"
    assert code(too_many) == "GRAPHQL_VALIDATION_FAILED"
    assert "aliases" in too_many["errors"][0]["message"]


@pytest.mark.parametrize(
    "item",
    [
        42,
        "{ __typename }",
        None,
        [],
        True,
        {},
        {"query": 7},
        {"query": "{ __typename }", "variables": 1},
    ],
    ids=["number", "string", "null", "array", "bool", "empty-object", "query-number", "bad-vars"],
)
def test_an_item_that_is_not_an_operation_gets_its_own_error(
    http: httpx.Client, item: object
) -> None:
    response = batch(http, [{"query": "{ __typename }"}, item, {"query": "{ __typename }"}])
    assert response.status_code == 200
    before, refused, after = response.json()
    assert before["data"] == after["data"] == {"__typename": "Query"}
    assert "data" not in refused
    assert code(refused) == "BAD_REQUEST"


def test_a_subscription_in_a_batch_is_refused_alone(http: httpx.Client) -> None:
    response = batch(
        http, [{"query": NOTICES, "variables": {"id": new_id()}}, {"query": "{ __typename }"}]
    )
    refused, ok = response.json()
    assert code(refused) == "STREAMING_TRANSPORT_REQUIRED"
    assert ok["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("size", [11, 500])
def test_a_batch_over_the_limit_is_refused_whole(http: httpx.Client, size: int) -> None:
    response = batch(http, [{"query": "{ __typename }"}] * size)
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert code(body) == "BATCH_TOO_LARGE"
    assert body["errors"][0]["extensions"]["maxOperations"] == 10
    assert f"at most 10 operations; this one has {size}" in body["errors"][0]["message"]
    # At the limit it runs.
    full = batch(http, [{"query": "{ __typename }"}] * 10)
    assert [answer["data"] for answer in full.json()] == [{"__typename": "Query"}] * 10


def test_an_empty_batch_is_a_bad_request(http: httpx.Client) -> None:
    response = batch(http, [])
    assert response.status_code == 400
    assert code(response.json()) == "BAD_REQUEST"


def test_batching_can_be_turned_off(unbatched: httpx.Client) -> None:
    response = batch(unbatched, [{"query": "{ __typename }"}])
    assert response.status_code == 400
    body = response.json()
    assert code(body) == "BATCH_TOO_LARGE"
    assert body["errors"][0]["extensions"]["maxOperations"] == 0
    assert "CONFAB_GRAPHQL_BATCH_LIMIT" in body["errors"][0]["message"]
    single = unbatched.post("/graphql", json={"query": "{ __typename }"})
    assert single.json()["data"] == {"__typename": "Query"}


APOLLO_BATCH = r"""
const { ApolloClient, InMemoryCache, gql } = require('@apollo/client');
const { BatchHttpLink } = require('@apollo/client/link/batch-http');
const [base, key, id] = process.argv.slice(2);
const bodies = [];
const client = new ApolloClient({
  link: new BatchHttpLink({
    uri: base + '/graphql',
    headers: { 'AOMI-APP-KEY': key },
    batchMax: 5,
    batchInterval: 20,
    fetch: (url, options) => { bodies.push(JSON.parse(options.body)); return fetch(url, options); },
  }),
  cache: new InMemoryCache(),
});
(async () => {
  await client.mutate({
    mutation: gql`mutation Create($id: ID!) { createSession(id: $id) { id } }`,
    variables: { id },
  });
  const read = gql`query Read($id: ID!) { session(id: $id) { id } }`;
  const apps = gql`query Apps { apps { name } }`;
  const [one, two] = await Promise.all([
    client.query({ query: read, variables: { id }, fetchPolicy: 'no-cache' }),
    client.query({ query: apps, fetchPolicy: 'no-cache' }),
  ]);
  console.log(JSON.stringify({ one: one.data, two: two.data, sizes: bodies.map((b) => b.length) }));
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


def test_apollo_batch_http_link_gets_every_answer(
    server: ServerProcess, alpha_cli_key: str
) -> None:
    session_id = new_id()
    run = run_node(APOLLO_BATCH, server.url, alpha_cli_key, session_id, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["one"]["session"]["id"] == session_id
    assert {"name": "alpha", "__typename": "AppInfo"} in out["two"]["apps"]
    assert 2 in out["sizes"], out["sizes"]  # the two queries went as one batch
