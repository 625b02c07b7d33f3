"""GraphQL over HTTP as real clients meet it, on a real server process (PostgreSQL, Redis).

- graphql-http's `auditServer` (npm): every MUST and every SHOULD of the GraphQL over
  HTTP spec passes.
- Media types: `application/graphql-response+json` when accepted (request errors 4xx
  without `data`), `application/json` otherwise (200 with errors), and every error
  with an `extensions.code`.
- Subscriptions: a plain JSON POST gets a clear 400 naming the transports that work;
  Apollo Client's HttpLink runs one as a multipart subscription and receives an
  event; a multipart stream ends when its key is revoked.
- The legacy graphql-ws protocol (subscriptions-transport-ws, over `ws`) answers
  queries and mutations with data.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from tests.conftest import new_id
from tests.live import cli, ws_session
from tests.node_tools import run_node
from tests.processes import ServerProcess

GRAPHQL_RESPONSE = "application/graphql-response+json"
MULTIPART = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0",application/json'
NOTICES = "subscription($id: ID!) { systemNotice(sessionId: $id) { cursor message } }"
CREATE = "mutation($id: ID!) { createSession(id: $id) { id } }"
NOTICE = "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"
DEADLINE = 20.0


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def post(
    http: httpx.Client, body: object, accept: str | None = None, **headers: str
) -> httpx.Response:
    if accept is not None:
        headers["Accept"] = accept
    return http.post("/graphql", json=body, headers=headers)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


def still_serves(http: httpx.Client) -> None:
    answer = post(http, {"query": "{ __typename }"})
    assert answer.status_code == 200
    assert answer.json()["data"] == {"__typename": "Query"}


# -- the audit ----------------------------------------------------------------------------

AUDIT = r"""
const { auditServer } = require('graphql-http');
auditServer({ url: process.argv[2] + '/graphql' }).then((results) => {
  console.log(JSON.stringify(results.map((r) => ({
    id: r.id, name: r.name, status: r.status, reason: r.reason || null,
  }))));
}, (error) => { console.error(error); process.exit(1); });
"""


def test_the_graphql_over_http_audit_passes_every_must_and_should(server: ServerProcess) -> None:
    run = run_node(AUDIT, server.url)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    failures = [r for r in results if r["status"] in ("error", "warn")]
    for failure in failures:
        print(f"{failure['status']} {failure['id']} {failure['name']}: {failure['reason']}")
    notices = [r for r in results if r["status"] == "notice"]
    print(f"audit: {len(results)} checks, {len(failures)} MUST/SHOULD failures, {len(notices)} MAY")
    assert len(results) > 50
    assert failures == []


# -- media types and request errors -------------------------------------------------------


def test_graphql_response_json_when_accepted(http: httpx.Client) -> None:
    answer = post(http, {"query": "{ __typename }"}, f"{GRAPHQL_RESPONSE}, application/json;q=0.9")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert answer.json()["data"] == {"__typename": "Query"}

    # A client preferring application/json gets it, with errors at 200 and `data: null`.
    legacy = post(http, {"query": "{ nope }"}, f"application/json, {GRAPHQL_RESPONSE};q=0.5")
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None
    assert codes(legacy.json()) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "{"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
        (
            {"query": "query($id: ID!) { session(id: $id) { id } }", "variables": {"id": None}},
            "BAD_USER_INPUT",
        ),
        (
            {
                "query": "query($n: Int!) { sessions(first: $n) { edges { cursor } } }",
                "variables": {"n": "many"},
            },
            "BAD_USER_INPUT",
        ),
        ({"query": "query A { __typename } query B { __typename }"}, "GRAPHQL_VALIDATION_FAILED"),
        (
            {"query": "query A { __typename }", "operationName": "Z"},
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ],
    ids=["syntax", "validation", "null-variable", "wrong-variable-type", "no-name", "unknown-name"],
)
def test_document_errors_are_400_without_data_under_graphql_response_json(
    http: httpx.Client, body: dict[str, Any], code: str
) -> None:
    strict = post(http, body, GRAPHQL_RESPONSE)
    assert strict.status_code == 400, strict.text
    assert "data" not in strict.json()
    assert codes(strict.json()) == [code]

    legacy = post(http, body, "application/json")
    assert legacy.status_code == 200
    assert legacy.json()["data"] is None
    assert codes(legacy.json()) == [code]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json", None])
@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{ "not json', "application/json", 400),
        (b"", "application/json", 400),
        (b'{"variables": {}}', "application/json", 400),
        (b'{"query": 42}', "application/json", 400),
        (b'{"query": "{ __typename }", "variables": "{}"}', "application/json", 400),
        (b'{"query": "{ __typename }", "extensions": []}', "application/json", 400),
        (b'"a string"', "application/json", 400),
        (b'{"query": "{ __typename }"}', "text/plain", 415),
        (b'{"query": "{ __typename }"}', "", 415),
    ],
    ids=[
        "bad-json",
        "empty",
        "no-query",
        "query-not-string",
        "variables-not-object",
        "extensions-not-object",
        "not-an-object",
        "text-plain",
        "no-content-type",
    ],
)
def test_unreadable_requests_are_4xx_json_without_data(
    http: httpx.Client, accept: str | None, content: bytes, content_type: str, status: int
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if accept:
        headers["Accept"] = accept
    answer = http.post("/graphql", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(accept or "application/json")
    body = answer.json()
    assert "data" not in body
    assert codes(body) == ["BAD_REQUEST"]
    assert body["errors"][0]["message"]
    still_serves(http)


def test_a_mutation_over_get_is_405_and_runs_nothing(http: httpx.Client) -> None:
    session_id = new_id()
    answer = http.get(
        "/graphql", params={"query": CREATE, "variables": json.dumps({"id": session_id})}
    )
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert codes(answer.json()) == ["BAD_REQUEST"]
    read = http.get(
        "/graphql",
        params={
            "query": "query($id: ID!) { session(id: $id) { id } }",
            "variables": json.dumps({"id": session_id}),
        },
    )
    assert read.json()["data"] == {"session": None}


def test_graphiql_is_still_served_to_a_browser(http: httpx.Client) -> None:
    page = http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


async def test_variable_errors_carry_a_code_over_websockets_too(server: ServerProcess) -> None:
    async with ws_session(server) as session:
        request = GraphQLRequest(
            "query($id: ID!) { session(id: $id) { id } }", variable_values={"id": {"x": 1}}
        )
        with pytest.raises(TransportQueryError) as raised:
            await session.execute(request)
    assert raised.value.errors is not None
    assert [e["extensions"]["code"] for e in raised.value.errors] == ["BAD_USER_INPUT"]


# -- subscriptions over HTTP ----------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "application/json", GRAPHQL_RESPONSE])
def test_a_subscription_on_a_plain_post_names_the_transports_that_work(
    http: httpx.Client, accept: str | None
) -> None:
    answer = post(http, {"query": NOTICES, "variables": {"id": new_id()}}, accept)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert "data" not in body
    assert codes(body) == ["STREAMING_TRANSPORT_REQUIRED"]
    message = body["errors"][0]["message"]
    for transport in ("graphql-transport-ws", "graphql-ws", "text/event-stream", "multipart"):
        assert transport in message
    still_serves(http)


APOLLO_SUBSCRIPTION = r"""
const { ApolloClient, InMemoryCache, HttpLink, gql } = require('@apollo/client');
const crypto = require('crypto');
const [base, key] = process.argv.slice(2);
const headers = { 'AOMI-APP-KEY': key };
const client = new ApolloClient({
  link: new HttpLink({ uri: base + '/graphql', headers }),
  cache: new InMemoryCache(),
});
async function subscribers() {
  return (await (await fetch(base + '/readyz')).json()).events.subscribers;
}
(async () => {
  const id = crypto.randomUUID();
  await client.mutate({
    mutation: gql`mutation Create($id: ID!) { createSession(id: $id) { id } }`,
    variables: { id },
  });
  const before = await subscribers();
  const events = client.subscribe({
    query: gql`subscription Notices($id: ID!) {
      systemNotice(sessionId: $id) { cursor message }
    }`,
    variables: { id },
  });
  const first = new Promise((resolve, reject) => {
    const subscription = events.subscribe({
      next: (value) => { subscription.unsubscribe(); resolve(value); },
      error: reject,
    });
  });
  while ((await subscribers()) <= before) await new Promise((r) => setTimeout(r, 25));
  await client.mutate({
    mutation: gql`mutation Notice($id: ID!, $m: String!) {
      postSystemNotice(sessionId: $id, message: $m) { id }
    }`,
    variables: { id, m: 'over multipart' },
  });
  console.log(JSON.stringify(await first));
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


def test_apollo_http_link_receives_a_multipart_subscription_event(
    server: ServerProcess, http: httpx.Client, alpha_cli_key: str
) -> None:
    run = run_node(APOLLO_SUBSCRIPTION, server.url, alpha_cli_key, timeout=60)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert "errors" not in result, result
    assert result["data"]["systemNotice"]["message"] == "over multipart"
    still_serves(http)


def multipart_parts(text: str) -> list[dict[str, Any]]:
    """The JSON of each complete part in a multipart/mixed text (boundary `graphql`)."""
    parts = []
    for chunk in text.split("\r\n--graphql")[:-1]:
        _, _, body = chunk.partition("\r\n\r\n")
        if body.strip():
            parts.append(json.loads(body))
    return parts


async def multipart_until(
    stream: AsyncIterator[str], done: Any, deadline: float
) -> tuple[str, list[dict[str, Any]]]:
    text = ""
    async for chunk in stream:
        text += chunk
        parts = multipart_parts(text)
        if done(text, parts):
            return text, parts
        assert time.monotonic() < deadline, text
    return text, multipart_parts(text)


async def test_a_multipart_subscription_ends_when_its_key_is_revoked(
    server: ServerProcess, live_env: dict[str, str]
) -> None:
    key = cli(live_env, "keys", "create", "--app", "alpha", "--label", "multipart")
    prefix = "_".join(key.split("_")[:2])
    session_id = new_id()
    headers = {"AOMI-APP-KEY": key}
    deadline = time.monotonic() + DEADLINE
    async with httpx.AsyncClient(base_url=server.url, timeout=DEADLINE) as client:
        created = await client.post(
            "/graphql", json={"query": CREATE, "variables": {"id": session_id}}, headers=headers
        )
        assert "errors" not in created.json()
        body = {"query": NOTICES, "variables": {"id": session_id}}
        async with client.stream(
            "POST", "/graphql", json=body, headers={**headers, "Accept": MULTIPART}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("multipart/mixed")
            chunks = stream.aiter_text()
            # The first part is a heartbeat ({}): the subscription is open.
            await multipart_until(chunks, lambda _t, parts: len(parts) >= 1, deadline)
            cli(live_env, "keys", "revoke", prefix)
            text, parts = await multipart_until(
                chunks, lambda t, _p: t.endswith("--graphql--\r\n"), deadline
            )
    assert text.endswith("--graphql--\r\n")
    last = [part for part in parts if part][-1]
    assert last["payload"] is None
    assert [e["extensions"]["code"] for e in last["errors"]] == ["UNAUTHENTICATED"]


# -- the legacy graphql-ws protocol ---------------------------------------------------------

LEGACY = r"""
const { SubscriptionClient } = require('subscriptions-transport-ws');
const WebSocket = require('ws');
const crypto = require('crypto');
const [base, key] = process.argv.slice(2);
const client = new SubscriptionClient(
  base.replace('http', 'ws') + '/graphql',
  { reconnect: false, connectionParams: { appKey: key } },
  WebSocket,
);
function run(query, variables) {
  return new Promise((resolve, reject) => {
    const results = [];
    client.request({ query, variables }).subscribe({
      next: (value) => results.push(value),
      error: reject,
      complete: () => resolve(results),
    });
  });
}
(async () => {
  const id = crypto.randomUUID();
  const out = {};
  out.mutation = await run('mutation($id: ID!) { createSession(id: $id) { id } }', { id });
  out.query = await run('query($id: ID!) { session(id: $id) { id } }', { id });
  out.apps = await run('{ apps { name } }');
  out.badVariable = await run('query($id: ID!) { session(id: $id) { id } }', { id: null });
  out.id = id;
  console.log(JSON.stringify(out));
  client.close();
  process.exit(0);
})().catch((error) => { console.error(JSON.stringify(error)); process.exit(1); });
"""


def test_legacy_graphql_ws_answers_queries_and_mutations(
    server: ServerProcess, http: httpx.Client, alpha_cli_key: str
) -> None:
    run = run_node(LEGACY, server.url, alpha_cli_key, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    session_id = out["id"]
    (mutation,) = out["mutation"]
    assert mutation["data"] == {"createSession": {"id": session_id}}
    assert out["query"][0]["data"] == {"session": {"id": session_id}}
    assert {"name": "alpha"} in out["apps"][0]["data"]["apps"]
    (bad,) = out["badVariable"]
    assert [e["extensions"]["code"] for e in bad["errors"]] == ["BAD_USER_INPUT"]
    # Stored in the key's app, readable over HTTP.
    answer = post(
        http,
        {"query": "query($id: ID!) { session(id: $id) { id } }", "variables": {"id": session_id}},
        **{"AOMI-APP-KEY": alpha_cli_key},
    )
    assert answer.json()["data"] == {"session": {"id": session_id}}
