"""Persisted queries (Apollo's APQ) and trusted documents, on real server processes.

- APQ, shared through Redis by two replicas (PostgreSQL, Redis): Apollo Client's
  PersistedQueryLink over HttpLink falls back once and registers, then sends the hash
  alone; a fresh client on the other replica sends the hash alone over GET and is
  answered without falling back.
- APQ in one process (embedded: SQLite, memory bus): the same, without Redis.
- Trusted documents: `server.py documents load` stores them in the database; two
  trusted replicas run the loaded operations (however the client lays them out, over
  HTTP and WebSockets), GraphiQL's introspection, and nothing else.

Every document here is new to the run (a fresh operation name), so Redis, shared by
every run on this machine, never answers from an earlier one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from graphql import get_introspection_query, parse
from schema.trusted import operations
from tests.conftest import new_id, replica_pair
from tests.live import Collector, cli, wait_for_subscribers, ws_session
from tests.node_tools import run_node
from tests.processes import ROOT, ServerProcess, running

GRAPHQL_RESPONSE = "application/graphql-response+json"
OPERATIONS = ROOT / "graphql" / "operations"
DEADLINE = 20.0


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def fresh_query() -> str:
    return f"query Fresh{uuid.uuid4().hex} {{ apps {{ name }} }}"


def hashed_get(url: str, digest: str, **headers: str) -> httpx.Response:
    params = {"extensions": json.dumps(persisted(digest))}
    return httpx.get(f"{url}/graphql", params=params, headers=headers, timeout=10)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


@pytest.fixture(scope="module")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# -- APQ across replicas ------------------------------------------------------------------

APOLLO_APQ = r"""
const { ApolloClient, InMemoryCache, HttpLink, gql } = require('@apollo/client');
const { PersistedQueryLink } = require('@apollo/client/link/persisted-queries');
const crypto = require('crypto');
const [first, second, key, name] = process.argv.slice(2);
const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');
function client(base, options, log) {
  const fetchFn = (url, init) => {
    const body = init.body ? JSON.parse(init.body) : null;
    log.push({ method: init.method || 'GET', url: String(url), hasQuery: !!(body && body.query) });
    return fetch(url, init);
  };
  return new ApolloClient({
    link: new PersistedQueryLink({ sha256, ...options }).concat(
      new HttpLink({ uri: base + '/graphql', fetch: fetchFn, headers: { 'AOMI-APP-KEY': key } }),
    ),
    cache: new InMemoryCache(),
  });
}
(async () => {
  const query = gql(`query ${name} { apps { name } }`);
  const out = { a: [], again: [], b: [] };
  const a = client(first, {}, out.a);
  out.first = (await a.query({ query, fetchPolicy: 'no-cache' })).data;
  out.again = [];
  const a2 = client(first, {}, out.again);
  out.second = (await a2.query({ query, fetchPolicy: 'no-cache' })).data;
  const b = client(second, { useGETForHashedQueries: true }, out.b);
  out.other = (await b.query({ query, fetchPolicy: 'no-cache' })).data;
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


def test_apollo_registers_once_then_every_replica_answers_the_hash_alone(
    replicas: tuple[ServerProcess, ServerProcess],
    alpha_cli_key: str,
    redis_client: redis.Redis,
) -> None:
    one, two = replicas
    name = f"Apps{uuid.uuid4().hex}"
    run = run_node(APOLLO_APQ, one.url, two.url, alpha_cli_key, name, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for answer in (out["first"], out["second"], out["other"]):
        assert {"name": "alpha", "__typename": "AppInfo"} in answer["apps"], answer
    # First time: the hash alone, PERSISTED_QUERY_NOT_FOUND, then the query with it.
    assert [entry["hasQuery"] for entry in out["a"]] == [False, True]
    # Known: the hash alone, once.
    assert [entry["hasQuery"] for entry in out["again"]] == [False]
    # Another replica, a fresh client, over GET (what a CDN caches): the hash alone.
    assert [(entry["method"], entry["hasQuery"]) for entry in out["b"]] == [("GET", False)]
    assert "extensions=" in out["b"][0]["url"]
    # Shared through Redis, with a TTL.
    keys = [k for k in redis_client.scan_iter("confab:pq:*") if k != b"confab:pq:index"]
    assert keys
    assert all(0 < redis_client.ttl(k) <= 86_400 for k in keys[:5])


def test_a_hash_alone_runs_over_get_on_the_other_replica(
    replicas: tuple[ServerProcess, ServerProcess], redis_client: redis.Redis
) -> None:
    one, two = replicas
    query = fresh_query()
    digest = sha256(query)
    registered = httpx.post(
        f"{one.url}/graphql", json={"query": query, "extensions": persisted(digest)}, timeout=10
    )
    assert registered.json()["data"] == {"apps": [{"name": "default"}]}
    assert redis_client.get(f"confab:pq:{digest}") == query.encode()
    answer = hashed_get(two.url, digest)
    assert answer.status_code == 200
    assert answer.json()["data"] == {"apps": [{"name": "default"}]}


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
def test_an_unknown_hash_is_persisted_query_not_found(
    replicas: tuple[ServerProcess, ServerProcess], accept: str
) -> None:
    one, _ = replicas
    answer = httpx.post(
        f"{one.url}/graphql",
        json={"extensions": persisted(sha256(fresh_query()))},
        headers={"Accept": accept},
        timeout=10,
    )
    # As Apollo's link expects: 200, so that it retries with the document.
    assert answer.status_code == 200
    assert answer.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }


def test_a_wrong_hash_is_refused_and_nothing_runs(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    one, _ = replicas
    session_id = new_id()
    create = "mutation($id: ID!) { createSession(id: $id) { id } }"
    answer = httpx.post(
        f"{one.url}/graphql",
        json={
            "query": create,
            "variables": {"id": session_id},
            "extensions": persisted(sha256("something else")),
        },
        timeout=10,
    )
    assert answer.status_code == 400
    body = answer.json()
    assert "data" not in body
    assert codes(body) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert sha256(create) in body["errors"][0]["message"]
    read = httpx.post(
        f"{one.url}/graphql",
        json={
            "query": "query($id: ID!) { session(id: $id) { id } }",
            "variables": {"id": session_id},
        },
        timeout=10,
    )
    assert read.json()["data"] == {"session": None}


@pytest.mark.parametrize(
    "extension",
    [
        "not an object",
        {"version": 2, "sha256Hash": "0" * 64},
        {"version": 1, "sha256Hash": "not hex"},
        {"version": 1},
    ],
    ids=["not-object", "version-2", "not-hex", "no-hash"],
)
def test_a_malformed_persisted_query_is_a_bad_request(
    replicas: tuple[ServerProcess, ServerProcess], extension: object
) -> None:
    one, _ = replicas
    answer = httpx.post(
        f"{one.url}/graphql", json={"extensions": {"persistedQuery": extension}}, timeout=10
    )
    assert answer.status_code == 400
    assert codes(answer.json()) == ["BAD_REQUEST"]
    assert httpx.post(f"{one.url}/graphql", json={"query": "{ __typename }"}).status_code == 200


def test_a_document_that_does_not_validate_is_not_registered(
    replicas: tuple[ServerProcess, ServerProcess], redis_client: redis.Redis
) -> None:
    one, two = replicas
    query = f"query Broken{uuid.uuid4().hex} {{ noSuchField }}"
    digest = sha256(query)
    answer = httpx.post(
        f"{one.url}/graphql", json={"query": query, "extensions": persisted(digest)}, timeout=10
    )
    assert codes(answer.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert redis_client.get(f"confab:pq:{digest}") is None
    for replica in (one, two):
        assert codes(hashed_get(replica.url, digest).json()) == ["PERSISTED_QUERY_NOT_FOUND"]


# -- APQ in one process -------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("apq-embedded")
    env = {"DATABASE_URL": f"sqlite://{root / 'confab.sqlite3'}", "CONFAB_EVENT_BUS": "memory://"}
    with running(env, root / "server.log") as process:
        yield process


def test_without_redis_documents_are_kept_in_the_process(
    embedded: ServerProcess, redis_client: redis.Redis
) -> None:
    query = fresh_query()
    digest = sha256(query)
    assert codes(hashed_get(embedded.url, digest).json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    registered = httpx.post(
        f"{embedded.url}/graphql", json={"query": query, "extensions": persisted(digest)}
    )
    assert registered.json()["data"] == {"apps": [{"name": "default"}]}
    assert hashed_get(embedded.url, digest).json()["data"] == {"apps": [{"name": "default"}]}
    assert redis_client.get(f"confab:pq:{digest}") is None


# -- trusted documents ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trusted_env(live_env: dict[str, str]) -> dict[str, str]:
    loaded = cli(live_env, "documents", "load")
    assert loaded.startswith("trusted "), loaded
    return {**live_env, "CONFAB_GRAPHQL_TRUSTED_DOCUMENTS": "true"}


@pytest.fixture(scope="module")
def trusted(
    trusted_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with replica_pair(trusted_env, tmp_path_factory.mktemp("trusted")) as pair:
        yield pair


def file_operation(file: str, name: str) -> tuple[str, str]:
    """(the file's text, the canonical text of its operation `name`)."""
    text = (OPERATIONS / file).read_text()
    for operation, canonical, _ in operations(parse(text)):
        if operation.name is not None and operation.name.value == name:
            return text, canonical
    raise AssertionError(f"no {name} in {file}")


def gql_post(server: ServerProcess, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/graphql", json=body, headers=headers, timeout=10)


def test_loaded_operations_run_on_every_replica_however_they_are_laid_out(
    trusted: tuple[ServerProcess, ServerProcess],
) -> None:
    text, canonical = file_operation("threads.graphql", "AppsAndModels")
    for replica in trusted:
        # The whole file, as a client bundling it would send it.
        answer = gql_post(replica, {"query": text, "operationName": "AppsAndModels"})
        assert answer.json()["data"]["models"], answer.text
        # Laid out on one line.
        flat = " ".join(canonical.split())
        assert gql_post(replica, {"query": flat}).json()["data"]["models"]
        # By hash alone, over GET.
        by_hash = hashed_get(replica.url, sha256(canonical))
        assert by_hash.json()["data"]["models"], by_hash.text


@pytest.mark.parametrize(
    "query",
    [
        "{ apps { name } }",
        "query AppsAndModels { apps { name } }",  # a known name, another operation
        "query AppsAndModels { apps { name displayName models } models } query X { models }",
    ],
    ids=["unknown", "same-name", "extra-operation-selected-by-default"],
)
def test_anything_else_is_not_allowed(
    trusted: tuple[ServerProcess, ServerProcess], query: str
) -> None:
    one, _ = trusted
    body: dict[str, Any] = {"query": query}
    if query.endswith("query X { models }"):
        body["operationName"] = "X"
    legacy = gql_post(one, body)
    assert legacy.status_code == 200
    assert legacy.json()["data"] is None
    assert codes(legacy.json()) == ["PERSISTED_QUERY_NOT_ALLOWED"]
    strict = gql_post(one, body, Accept=GRAPHQL_RESPONSE)
    assert strict.status_code == 400
    assert "data" not in strict.json()
    assert codes(strict.json()) == ["PERSISTED_QUERY_NOT_ALLOWED"]


def test_an_untrusted_mutation_runs_nothing(trusted: tuple[ServerProcess, ServerProcess]) -> None:
    one, _ = trusted
    session_id = new_id()
    refused = gql_post(
        one,
        {
            "query": "mutation($id: ID!) { createSession(id: $id) { id title } }",
            "variables": {"id": session_id},
        },
    )
    assert codes(refused.json()) == ["PERSISTED_QUERY_NOT_ALLOWED"]
    _, read = file_operation("sessions.graphql", "Session")
    answer = gql_post(one, {"query": read, "variables": {"id": session_id}})
    assert answer.json()["data"] == {"session": None}, answer.text


def test_a_document_registered_elsewhere_is_still_checked(
    trusted: tuple[ServerProcess, ServerProcess],
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """APQ is how a document travels, not a way past the trusted set: a hash another
    (untrusted) replica registered in the shared Redis does not run here."""
    query = fresh_query()
    digest = sha256(query)
    plain, _ = replicas
    gql_post(plain, {"query": query, "extensions": persisted(digest)})
    answer = hashed_get(trusted[0].url, digest)
    assert codes(answer.json()) == ["PERSISTED_QUERY_NOT_ALLOWED"]


def test_graphiql_introspection_keeps_working(trusted: tuple[ServerProcess, ServerProcess]) -> None:
    answer = gql_post(trusted[0], {"query": get_introspection_query(descriptions=True)})
    assert answer.status_code == 200
    assert answer.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    assert gql_post(trusted[0], {"query": "{ __typename }"}).json()["data"] == {
        "__typename": "Query"
    }


async def test_websockets_run_trusted_operations_only(
    trusted: tuple[ServerProcess, ServerProcess],
) -> None:
    one, two = trusted
    _, create = file_operation("sessions.graphql", "CreateSession")
    _, notice = file_operation("sessions.graphql", "PostSystemNotice")
    _, subscription = file_operation("subscriptions.graphql", "SystemNotice")
    session_id = new_id()
    created = gql_post(one, {"query": create, "variables": {"id": session_id}})
    assert "errors" not in created.json(), created.text
    async with ws_session(one) as session:
        with pytest.raises(TransportQueryError) as raised:
            await session.execute(GraphQLRequest("{ apps { name } }"))
        assert raised.value.errors is not None
        assert raised.value.errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"

        collector = Collector(session, subscription, sessionId=session_id)
        try:
            await wait_for_subscribers(one, 1)
            sent = gql_post(
                two, {"query": notice, "variables": {"sessionId": session_id, "message": "trusted"}}
            )
            assert "errors" not in sent.json(), sent.text
            (event,) = await collector.wait_for(1)
        finally:
            await collector.stop()
    assert event["systemNotice"]["message"] == "trusted"


APOLLO_TRUSTED = r"""
const { ApolloClient, InMemoryCache, HttpLink, gql } = require('@apollo/client');
const { PersistedQueryLink } = require('@apollo/client/link/persisted-queries');
const crypto = require('crypto');
const [base] = process.argv.slice(2);
const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');
const client = new ApolloClient({
  link: new PersistedQueryLink({ sha256 }).concat(new HttpLink({ uri: base + '/graphql' })),
  cache: new InMemoryCache(),
});
(async () => {
  const trusted = gql`query AppsAndModels { apps { name displayName models } models }`;
  const untrusted = gql`query Mine { apps { name } }`;
  const out = {};
  out.trusted = (await client.query({ query: trusted, fetchPolicy: 'no-cache' })).data;
  try {
    await client.query({ query: untrusted, fetchPolicy: 'no-cache' });
    out.untrusted = 'ran';
  } catch (error) {
    out.untrusted = (error.errors || []).map((e) => e.extensions && e.extensions.code);
  }
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
"""


def test_apollo_runs_trusted_operations_and_is_told_about_others(
    trusted: tuple[ServerProcess, ServerProcess],
) -> None:
    run = run_node(APOLLO_TRUSTED, trusted[1].url, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    # Apollo adds __typename and prints its own way: matched by the operation.
    assert out["trusted"]["models"]
    assert out["untrusted"] == ["PERSISTED_QUERY_NOT_ALLOWED"]


def test_a_manifest_loaded_while_serving_reaches_every_replica(
    trusted: tuple[ServerProcess, ServerProcess],
    trusted_env: dict[str, str],
    tmp_path: Path,
) -> None:
    name = f"Extra{uuid.uuid4().hex}"
    body = f"query {name} {{ apps {{ name }} }}"
    for replica in trusted:
        assert codes(gql_post(replica, {"query": body}).json()) == ["PERSISTED_QUERY_NOT_ALLOWED"]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({sha256(body): body}))
    assert cli(trusted_env, "documents", "load", str(manifest)).startswith("trusted ")
    listed = cli(trusted_env, "documents", "list")
    assert name in listed
    deadline = time.monotonic() + DEADLINE
    for replica in trusted:
        while True:
            answer = gql_post(replica, {"query": body}).json()
            if "errors" not in answer:
                break
            assert time.monotonic() < deadline, answer
        assert answer["data"] == {"apps": [{"name": "default"}]}
        # The manifest's hash works alone.
        assert hashed_get(replica.url, sha256(body)).json()["data"] == answer["data"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (json.dumps({"0" * 64: "query A { apps { name } }"}), "not the SHA-256"),
        (json.dumps({sha256("query B { nope }"): "query B { nope }"}), "Cannot query field"),
        ("not json", "not a JSON manifest"),
    ],
    ids=["wrong-hash", "invalid-document", "not-json"],
)
def test_a_bad_manifest_is_refused_naming_the_entry(
    trusted_env: dict[str, str], tmp_path: Path, content: str, reason: str
) -> None:
    manifest = tmp_path / "bad.json"
    manifest.write_text(content)
    before = cli(trusted_env, "documents", "list")
    result = subprocess.run(
        [sys.executable, "server.py", "documents", "load", str(manifest)],
        cwd=ROOT,
        env={**os.environ, **trusted_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert reason in result.stderr
    assert str(manifest) in result.stderr
    assert cli(trusted_env, "documents", "list") == before
