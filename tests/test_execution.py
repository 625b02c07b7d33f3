"""Confab's executor answers exactly as graphql-core's own, errors included, while
completing leaf-only objects without a field-by-field execution."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
import strawberry

from schema.execution import ConfabExecutor
from tests.conftest import GraphQLClient, new_id


@strawberry.enum
class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    note: str | None
    colour: Colour
    broken: str  # non-null, but some items hold None

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


def _items() -> list[Item]:
    return [
        Item(id=strawberry.ID(str(n)), name=f"item {n}", note=None, colour=Colour.RED, broken="ok")
        for n in range(5)
    ]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return _items()

    @strawberry.field
    def with_a_null(self) -> list[Item]:
        items = _items()
        items[2].broken = None  # type: ignore[assignment]
        return items

    @strawberry.field
    def with_a_bad_enum(self) -> list[Item | None]:
        items = _items()
        items[1].colour = "green"  # type: ignore[assignment]
        return list(items)


stock = strawberry.Schema(query=Query)
confab = strawberry.Schema(query=Query, execution_context_class=ConfabExecutor)

OPERATIONS: list[tuple[str, dict[str, Any]]] = [
    ("{ items { id name note colour } }", {}),
    ("{ items { __typename a: id b: name name } }", {}),
    ("{ items { ...F } } fragment F on Item { id colour }", {}),
    ("{ items { ... on Item { id } name } }", {}),
    ("{ items { id shout } }", {}),
    ("query($x: Boolean!) { items { id name @include(if: $x) } }", {"x": True}),
    ("query($x: Boolean!) { items { id name @include(if: $x) } }", {"x": False}),
    ("query($x: Boolean!) { items { id name @skip(if: $x) } }", {"x": True}),
    ("{ withANull { id broken } }", {}),
    ("{ withABadEnum { id colour } }", {}),
]


@pytest.mark.parametrize(("query", "variables"), OPERATIONS)
async def test_results_and_errors_match_graphql_core(query: str, variables: dict[str, Any]) -> None:
    expected = await stock.execute(query, variable_values=variables)
    actual = await confab.execute(query, variable_values=variables)
    assert actual.data == expected.data
    assert [e.formatted for e in actual.errors or []] == [
        e.formatted for e in expected.errors or []
    ]


async def test_leaf_only_objects_skip_field_by_field_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executed: list[str] = []
    original = ConfabExecutor.execute_field

    def counting(self: ConfabExecutor, *args: Any, **kwargs: Any) -> Any:
        executed.append("field")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConfabExecutor, "execute_field", counting)
    result = await confab.execute("{ items { id name note colour } }")
    assert result.errors is None
    assert len(result.data["items"]) == 5  # type: ignore[index]
    assert len(executed) == 1  # `items` itself; its 5 x 4 leaves in one loop each


async def test_a_variable_directive_is_honoured_on_every_request(gql: GraphQLClient) -> None:
    # The same (cached) document twice: a plan kept from the first request must not
    # decide the second.
    query = (
        "query($id: ID!, $full: Boolean!) { session(id: $id) { "
        "messages(last: 5) { nodes { id content @include(if: $full) } } } }"
    )
    session_id = new_id()
    await gql.data(
        'mutation($id: ID!) { sendMessage(sessionId: $id, content: "hello") { id } }',
        id=session_id,
    )
    full = await gql.data(query, id=session_id, full=True)
    bare = await gql.data(query, id=session_id, full=False)
    assert full["session"]["messages"]["nodes"][0]["content"] == "hello"
    assert all(set(node) == {"id"} for node in bare["session"]["messages"]["nodes"])
