"""GraphQL guard rails: limits, masked internal errors, health and readiness."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import GraphQLClient, new_id, started


async def test_default_limits_allow_the_deepest_real_query(gql: GraphQLClient) -> None:
    deepest = (
        "{ sessions { edges { node { threads { messages { "
        "pageInfo { hasNextPage } edges { node { id } } } } } } } }"
    )
    assert "errors" not in await gql.raw(deepest)


async def test_the_introspection_query_of_graphiql_is_allowed(gql: GraphQLClient) -> None:
    from graphql import get_introspection_query

    body = await gql.raw(get_introspection_query(descriptions=True))
    assert "errors" not in body, body["errors"]
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.fixture
def strict_settings(settings: Any) -> Any:
    return settings.with_overrides(
        graphql_max_depth=3, graphql_max_aliases=2, graphql_max_tokens=60
    )


async def test_limits_reject_deep_aliased_and_long_documents(
    strict_settings: Any,
) -> None:

    from server import create_app

    application = create_app(strict_settings)
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            gql = GraphQLClient(http)
            deep = await gql.error("{ sessions { edges { node { threads { id } } } } }")
            assert "exceeds maximum operation depth" in deep["message"]
            # The same document again: answered from the validation cache, still refused.
            again = await gql.error("{ sessions { edges { node { threads { id } } } } }")
            assert again["message"] == deep["message"]
            aliases = await gql.error("{ a: models b: models c: models }")
            assert "aliases" in aliases["message"]
            tokens = await gql.raw("{ " + " ".join(["models"] * 80) + " }")
            assert "token" in tokens["errors"][0]["message"].lower()
            assert "errors" not in await gql.raw("{ models }")


async def test_depth_and_aliases_count_through_fragments(strict_settings: Any) -> None:

    from server import create_app

    application = create_app(strict_settings)
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            gql = GraphQLClient(http)
            deep = await gql.error(
                "{ sessions { ...C } } "
                "fragment C on SessionConnection { edges { node { threads { id } } } }"
            )
            assert "exceeds maximum operation depth of 3" in deep["message"]
            # One alias in a fragment spread twice, beside two more: four to resolve.
            spread = await gql.error(
                '{ x: session(id: "1") { ...S } y: session(id: "2") { ...S } } '
                "fragment S on Session { t: title }"
            )
            assert "4 aliases" in spread["message"]
            assert spread["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_unexpected_errors_are_masked_and_logged(
    app: Starlette,
    gql: GraphQLClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(app.state.runtime.conversations, "find_session", broken)
    body = await gql.raw("query($id: ID!) { session(id: $id) { id } }", id=new_id())
    assert body["errors"][0]["message"] == "Internal server error."
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "hunter2" not in str(body)
    assert "hunter2" in caplog.text


async def test_healthz_and_readyz(
    app: Starlette, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.get("/healthz")).text == "OK"
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["database"] == "ok"
    assert body["events"]["backend"] == "memory"
    assert body["events"]["subscribers"] == 0

    async def down() -> None:
        raise ConnectionRefusedError("no database")

    monkeypatch.setattr(app.state.runtime.store, "ping", down)
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["ready"] is False
    assert (await client.get("/healthz")).status_code == 200


async def test_graphiql_is_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_queries_via_get(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ models }"})
    assert response.json()["data"] == {"models": ["builtin"]}
