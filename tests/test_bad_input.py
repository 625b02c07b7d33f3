"""Every bad input gets INVALID_INPUT naming the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import GraphQLClient, new_id

BIG = {"blob": "x" * (64 * 1024)}

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("session id", "query($id: ID!) { session(id: $id) { id } }", {"id": "nope"}, "id"),
    (
        "create id",
        "mutation($id: ID) { createSession(id: $id) { id } }",
        {"id": "12345"},
        "id",
    ),
    (
        "empty title",
        'mutation($id: ID!) { renameSession(id: $id, title: "   ") { id } }',
        {},
        "title",
    ),
    (
        "long title",
        "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }",
        {"t": "x" * 201},
        "title",
    ),
    (
        "public key",
        'mutation($id: ID!) { bindWallet(sessionId: $id, publicKey: "0x123") { id } }',
        {},
        "publicKey",
    ),
    (
        "public key not hex",
        "mutation($id: ID!) { bindWallet(sessionId: $id, "
        'publicKey: "0xZZ2d35Cc6634C0532925a3b844Bc454e4438f44e") { id } }',
        {},
        "publicKey",
    ),
    (
        "metadata not an object",
        "mutation($id: ID!) { updateMetadata(sessionId: $id, metadata: [1, 2]) { id } }",
        {},
        "metadata",
    ),
    (
        "metadata too big",
        "mutation($id: ID!, $m: JSON!) { updateMetadata(sessionId: $id, metadata: $m) { id } }",
        {"m": BIG},
        "metadata",
    ),
    (
        "user state not an object",
        'mutation($id: ID!) { updateUserState(sessionId: $id, userState: "x") { id } }',
        {},
        "userState",
    ),
    (
        "user state too big",
        "mutation($id: ID!, $s: JSON) { updateUserState(sessionId: $id, userState: $s) { id } }",
        {"s": BIG},
        "userState",
    ),
    (
        "thread id",
        'mutation($id: ID!) { createThread(sessionId: $id, id: "t-1") { id } }',
        {},
        "id",
    ),
    ("page size zero", "{ sessions(first: 0) { edges { cursor } } }", {}, "first"),
    ("page size too big", "{ sessions(first: 201) { edges { cursor } } }", {}, "first"),
    (
        "message page size",
        "query($id: ID!) { messages(threadId: $id, last: 500) { edges { cursor } } }",
        {},
        "last",
    ),
    (
        "first and last",
        "query($id: ID!) { messages(threadId: $id, first: 1, last: 1) { edges { cursor } } }",
        {},
        "first",
    ),
    ("session cursor", '{ sessions(after: "garbage") { edges { cursor } } }', {}, "after"),
    (
        "message cursor",
        'query($id: ID!) { messages(threadId: $id, after: "bad") { edges { cursor } } }',
        {},
        "after",
    ),
    (
        "list public key",
        '{ sessions(publicKey: "alice") { edges { cursor } } }',
        {},
        "publicKey",
    ),
]


@pytest.mark.parametrize(
    ("query", "variables", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_bad_input_is_rejected_naming_the_field(
    gql: GraphQLClient, query: str, variables: dict[str, Any], field: str
) -> None:
    session_id = new_id()
    before = await gql.data(
        'mutation($id: ID!) { createSession(id: $id, title: "Kept", metadata: {a: 1}) '
        "{ title metadata userState publicKey version } }",
        id=session_id,
    )
    variables = {"id": session_id, **variables}
    used = {name: value for name, value in variables.items() if f"${name}" in query}
    error = await gql.error(query, **used)
    assert error["extensions"]["code"] == "INVALID_INPUT", error
    assert error["message"].startswith(f"{field}:"), error["message"]

    after = await gql.data(
        "query($id: ID!) { session(id: $id) { title metadata userState publicKey version } }",
        id=session_id,
    )
    assert after["session"] == before["createSession"]


async def test_schema_type_errors_are_reported_with_a_code(gql: GraphQLClient) -> None:
    error = await gql.error("{ session(id: 5) { nope } }")
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_deeply_nested_system_message_is_free_text(client: httpx.AsyncClient) -> None:
    session_id = new_id()
    assert (
        await client.post(
            "/api/chat", params={"message": "hi"}, headers={"X-Session-Id": session_id}
        )
    ).status_code == 200
    text = "[" * 3_000
    response = await client.post(
        "/api/system", params={"message": text}, headers={"X-Session-Id": session_id}
    )
    assert response.status_code == 200, response.text
    assert response.json()["res"]["content"] == text
