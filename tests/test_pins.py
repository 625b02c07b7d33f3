"""Pins over GraphQL and REST, on SQLite and PostgreSQL: a pinned session is listed
before the others (across pages too), never expires by TTL (the janitor leaves it),
and unpinning starts its TTL again; another app cannot pin it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import httpx
from starlette.applications import Starlette

from runtime.keys import create_key
from tests.conftest import GraphQLClient, new_id, new_wallet
from tests.waiting import until

CREATE = "mutation($id: ID!, $k: String) { createSession(id: $id, publicKey: $k) { id } }"
PIN = "mutation($id: ID!) { pinSession(id: $id) { id isPinned expiresAt } }"
UNPIN = "mutation($id: ID!) { unpinSession(id: $id) { id isPinned expiresAt } }"
LIST = """query($k: String!, $after: String) {
  sessions(publicKey: $k, first: 1, after: $after) {
    edges { cursor node { id isPinned } } pageInfo { hasNextPage }
  }
}"""
READ = "query($id: ID!) { session(id: $id) { id isPinned expiresAt } }"


async def listed(gql: GraphQLClient, wallet: str) -> list[str]:
    """Every session of the wallet, a page of one at a time."""
    ids: list[str] = []
    after = None
    while True:
        page = (await gql.data(LIST, k=wallet, after=after))["sessions"]
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["edges"][-1]["cursor"]


async def test_pinned_sessions_are_listed_first(
    gql: GraphQLClient, client: httpx.AsyncClient
) -> None:
    wallet = new_wallet()
    oldest, middle, newest = new_id(), new_id(), new_id()
    for session_id in (oldest, middle, newest):
        await gql.data(CREATE, id=session_id, k=wallet)
    assert await listed(gql, wallet) == [newest, middle, oldest]
    await gql.data(PIN, id=oldest)
    await gql.data(PIN, id=middle)
    # Pinned first (the most recently active of them first), then the rest.
    assert await listed(gql, wallet) == [middle, oldest, newest]
    rest = await client.get("/api/sessions", params={"public_key": wallet})
    assert [s["session_id"] for s in rest.json()] == [middle, oldest, newest]
    await gql.data(UNPIN, id=middle)
    assert await listed(gql, wallet) == [oldest, middle, newest]


async def test_a_pinned_session_outlives_its_ttl_and_unpinning_restarts_it(
    app: Starlette, gql: GraphQLClient
) -> None:
    clear, _ = await create_key(["ephemeral"], "tests")  # session_ttl = 1 s
    ephemeral = gql.with_key(clear)
    pinned, unpinned = new_id(), new_id()
    await ephemeral.data(CREATE, id=pinned)
    await ephemeral.data(CREATE, id=unpinned)
    assert (await ephemeral.data(PIN, id=pinned))["pinSession"] == {
        "id": pinned,
        "isPinned": True,
        "expiresAt": None,
    }

    async def gone(session_id: str) -> bool:
        return (await ephemeral.data(READ, id=session_id))["session"] is None

    await until(lambda: gone(unpinned), "the unpinned session's second to pass")
    runtime = app.state.runtime
    await runtime.janitor.sweep()
    assert await runtime.store.get_session(UUID(unpinned)) is None
    assert (await ephemeral.data(READ, id=pinned))["session"]["isPinned"] is True
    assert await runtime.store.get_session(UUID(pinned)) is not None
    before = datetime.now().astimezone()
    unpinned_now = (await ephemeral.data(UNPIN, id=pinned))["unpinSession"]
    assert unpinned_now["isPinned"] is False
    assert datetime.fromisoformat(unpinned_now["expiresAt"]) > before
    await until(lambda: gone(pinned), "the unpinned session to expire like any other")


async def test_another_app_cannot_pin(gql: GraphQLClient, alpha_key: str, beta_key: str) -> None:
    session_id = new_id()
    await gql.with_key(alpha_key).data(CREATE, id=session_id)
    error = await gql.with_key(beta_key).error(PIN, id=session_id)
    assert error["extensions"]["code"] == "NOT_FOUND", error
    assert (await gql.with_key(alpha_key).data(READ, id=session_id))["session"]["isPinned"] is False
    error = await gql.error(PIN, id="not-an-id")
    assert error["extensions"]["code"] == "INVALID_INPUT", error
