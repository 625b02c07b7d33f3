"""Documents whose fragments spread each other over and over are judged in linear time.

In a chain where each fragment spreads the next one twice, following the spreads
reaches the last fragment 2^n times; 20 such fragments once held the event loop for
33 seconds. Confab's rules summarize each fragment once, so the work grows with the
document, which the counter of fragment walks shows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from schema.fragments import WALKS
from tests.conftest import GraphQLClient
from tests.processes import ServerProcess


def doubling_chain(length: int, *, aliased: bool, name: str = "F") -> str:
    """`F1` spreads `F2` twice, ..., `F<length>` selects `id`."""
    fragments = []
    for i in range(1, length):
        inner = f"...{name}{i + 1}"
        body = f"a{i}: id {inner} b{i}: title {inner}" if aliased else f"{inner} {inner}"
        fragments.append(f"fragment {name}{i} on Session {{ {body} }}")
    fragments.append(f"fragment {name}{length} on Session {{ id }}")
    return f"{{ sessions {{ edges {{ node {{ ...{name}1 }} }} }} }} " + " ".join(fragments)


async def walks_to_refuse(gql: GraphQLClient, query: str) -> tuple[int, dict[str, Any]]:
    before = WALKS.fragments
    error = await gql.error(query)
    return WALKS.fragments - before, error


async def test_aliased_chains_are_refused_with_work_linear_in_their_length(
    gql: GraphQLClient,
) -> None:
    short_walks, short = await walks_to_refuse(gql, doubling_chain(10, aliased=True))
    long_walks, long = await walks_to_refuse(gql, doubling_chain(40, aliased=True))
    # Aliases are counted as they would be resolved: 2 per fragment, doubled per level.
    assert f"{2 * (2**39 - 1)} aliases" in str(long["message"])
    assert "aliases" in str(short["message"])
    assert long_walks <= 4 * short_walks + 8


async def test_plain_chains_are_refused_by_their_cost_with_linear_work(
    gql: GraphQLClient,
) -> None:
    # No alias and little depth: only the cost, which counts each spread, refuses them.
    short_walks, short = await walks_to_refuse(gql, doubling_chain(10, aliased=False))
    long_walks, long = await walks_to_refuse(gql, doubling_chain(40, aliased=False))
    for error in (short, long):
        assert "cost" in str(error["message"])
        assert error["extensions"] == {
            "code": "GRAPHQL_VALIDATION_FAILED",
            "cost": error["extensions"]["cost"],
            "maxCost": 20_000,
        }
    assert long_walks <= 4 * short_walks + 8


async def test_the_same_refusal_again_walks_nothing(gql: GraphQLClient) -> None:
    query = doubling_chain(40, aliased=True)
    await gql.error(query)
    again, _ = await walks_to_refuse(gql, query)
    assert again == 0  # answered from the document cache


async def test_fragment_cycles_are_refused(gql: GraphQLClient) -> None:
    body = await gql.raw(
        "{ sessions { edges { node { ...A } } } } "
        "fragment A on Session { id ...B } fragment B on Session { title ...A }"
    )
    messages = [error["message"] for error in body["errors"]]
    assert any("Cannot spread fragment 'A' within itself" in m for m in messages), messages


async def test_fields_sharing_a_name_are_compared_within_a_budget(gql: GraphQLClient) -> None:
    # graphql-core compares every two of these 490 fields (quadratic): its budget,
    # lowered by Confab, stops it early.
    repeated = await gql.error("{ " + "apps { name } " * 490 + "}")
    assert repeated["message"] == "Validation aborted."
    assert repeated["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # 50 sibling fragments sharing their fields stay well within it.
    spreads = " ".join(f"...S{n}" for n in range(50))
    siblings = " ".join(f"fragment S{n} on Session {{ id title }}" for n in range(50))
    await gql.data(f"{{ sessions(first: 5) {{ nodes {{ {spreads} }} }} }} {siblings}")


async def test_a_real_server_stays_responsive_while_refusing_chains(server: ServerProcess) -> None:
    # Distinct texts (fragment names differ), so none is answered from the cache.
    chains = [doubling_chain(40, aliased=True, name=f"C{n}x") for n in range(8)]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        answers = await asyncio.gather(
            *(http.post("/graphql", json={"query": chain}) for chain in chains),
            *(http.get("/healthz") for _ in range(8)),
        )
    refusals, health = answers[: len(chains)], answers[len(chains) :]
    for refusal in refusals:
        error = refusal.json()["errors"][0]
        assert "aliases" in error["message"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert [response.text for response in health] == ["OK"] * len(health)
