"""Results kept until a session changes (schema/session_reads.py for GraphQL,
rest/snapshot_bodies.py for `/api/state`): answered again only while the session
is at the version they were computed from, only to the caller they were computed
for, never after the session expired; documents that read anything else are never
kept."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from starlette.applications import Starlette

from runtime.events.envelope import utc_now
from schema.build import ConfabSchema
from schema.view import ConfabGraphQL
from tests.conftest import GraphQLClient, new_id
from tests.waiting import until

CREATE = "mutation($id: ID!) { createSession(id: $id) { id } }"
SNAPSHOT = """
query Snapshot($id: ID!) {
  session(id: $id) {
    title isProcessing version
    messages(last: 20) { nodes { content } pageInfo { hasPreviousPage } }
  }
}"""
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }"


def schema_of(app: Starlette) -> ConfabSchema:
    for route in app.routes:
        endpoint = getattr(route, "app", None)  # the WebSocket route holds the view itself
        if isinstance(endpoint, ConfabGraphQL):
            schema = endpoint.schema
            assert isinstance(schema, ConfabSchema)
            return schema
    raise AssertionError("no GraphQL route")


def contents(data: dict[str, Any]) -> list[str]:
    return [m["content"] for m in data["session"]["messages"]["nodes"]]


async def test_a_kept_result_follows_every_write(
    app: Starlette, client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    reads = schema_of(app).session_reads
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    await gql.data(CREATE, id=session_id)
    first = await gql.data(SNAPSHOT, id=session_id)
    answered = reads.answered
    assert await gql.data(SNAPSHOT, id=session_id) == first
    assert reads.answered == answered + 1  # the second came from the kept result
    for n in range(3):
        await gql.data(RENAME, id=session_id, t=f"title {n}")
        renamed = await gql.data(SNAPSHOT, id=session_id)
        assert renamed["session"]["title"] == f"title {n}"
        await client.post("/api/system", headers=headers, params={"message": f"note {n}"})
        grown = await gql.data(SNAPSHOT, id=session_id)
        assert contents(grown) == [f"note {k}" for k in range(n + 1)]
        assert grown["session"]["version"] > renamed["session"]["version"]
        assert await gql.data(SNAPSHOT, id=session_id) == grown


async def test_a_kept_result_is_only_its_callers(
    app: Starlette, gql: GraphQLClient, alpha_key: str, beta_key: str
) -> None:
    alpha, beta = gql.with_key(alpha_key), gql.with_key(beta_key)
    session_id = new_id()
    await alpha.data(CREATE, id=session_id)
    await alpha.data(RENAME, id=session_id, t="alpha's")
    for _ in range(2):
        assert (await alpha.data(SNAPSHOT, id=session_id))["session"]["title"] == "alpha's"
        # Another app, and no key at all, see no such session, kept result or not.
        assert await beta.data(SNAPSHOT, id=session_id) == {"session": None}
        assert await gql.data(SNAPSHOT, id=session_id) == {"session": None}


async def test_a_kept_result_is_not_answered_once_the_session_expired(
    app: Starlette, gql: GraphQLClient
) -> None:
    from runtime.keys import create_key

    clear, _ = await create_key(["ephemeral"], "tests")  # session_ttl = 1 s
    ephemeral = gql.with_key(clear)
    session_id = new_id()
    await ephemeral.data(CREATE, id=session_id)
    assert (await ephemeral.data(SNAPSHOT, id=session_id))["session"] is not None
    assert (await ephemeral.data(SNAPSHOT, id=session_id))["session"] is not None
    record = await app.state.runtime.sessions.get(uuid.UUID(session_id))
    await until(lambda: utc_now() > record.expires_at, "the session's expiry")
    assert await ephemeral.data(SNAPSHOT, id=session_id) == {"session": None}


async def test_documents_reading_more_than_the_session_are_never_kept(
    app: Starlette, gql: GraphQLClient
) -> None:
    reads = schema_of(app).session_reads
    session_id = new_id()
    await gql.data(CREATE, id=session_id)
    for query in (
        "query($id: ID!) { session(id: $id) { title threads { id } } }",
        "query($id: ID!) { session(id: $id) { title streamingMessage { content } } }",
        "query($id: ID!) { session(id: $id) { messages(first: 5) { nodes { content } } } }",
        "query($id: ID!) { session(id: $id) { title } apps { name } }",
        "query($id: ID!) { session(id: $id) { systemEvents { kind } } }",
    ):
        answered = reads.answered
        for _ in range(3):
            await gql.data(query, id=session_id)
        assert reads.answered == answered, query


async def test_fragments_and_conditions_are_kept_per_variables(
    app: Starlette, gql: GraphQLClient
) -> None:
    query = """
    query($id: ID!, $withTitle: Boolean!) { session(id: $id) { ...Shown } }
    fragment Shown on Session { version title @include(if: $withTitle) }"""
    session_id = new_id()
    await gql.data(CREATE, id=session_id)
    reads = schema_of(app).session_reads
    for _ in range(2):
        shown = await gql.data(query, id=session_id, withTitle=True)
        hidden = await gql.data(query, id=session_id, withTitle=False)
        assert shown["session"]["title"] == "New chat"
        assert "title" not in hidden["session"]
    assert reads.answered >= 2


async def test_state_bodies_follow_events_and_streaming(client: httpx.AsyncClient) -> None:
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    await client.post("/api/sessions", headers=headers)
    idle = (await client.get("/api/state", headers=headers)).json()
    assert (await client.get("/api/state", headers=headers)).json() == idle
    # A notice: delivered once, in the next snapshot only.
    await client.post("/api/system", headers=headers, params={"message": "hello"})
    noticed = (await client.get("/api/state", headers=headers)).json()
    assert noticed["system_events"] == [{"SystemNotice": "hello"}]
    after = (await client.get("/api/state", headers=headers)).json()
    assert after["system_events"] == []
    assert [m["content"] for m in after["messages"]] == ["hello"]
    # A streaming answer shows, growing, in every poll while it is written.
    words = " ".join(f"word{n}" for n in range(30))
    await client.post("/api/chat", headers=headers, params={"message": f"/slow 2 {words}"})
    seen: list[str] = []

    async def streamed() -> bool:
        state = (await client.get("/api/state", headers=headers)).json()
        last = state["messages"][-1]
        if last.get("is_streaming"):
            seen.append(last["content"])
        return not state["is_processing"]

    await until(streamed, "the answer to finish")
    final = (await client.get("/api/state", headers=headers)).json()
    answer = final["messages"][-1]["content"]
    assert answer.startswith("You said: word0")
    assert not final["messages"][-1].get("is_streaming")
    assert seen, "the answer was seen while streaming"
    assert all(answer.startswith(part) for part in seen)  # each poll saw it as it grew


def test_the_kept_fields_are_plain_values_but_the_reviewed_window() -> None:
    """The allow-list's rule as a test: every field a kept result may contain is a
    plain value of its object (no resolver), except `Session.messages`, reviewed to
    read only the session's exact tail. A new resolver field that reads anything
    else must not join the list without the same review."""
    from strawberry.types.base import get_object_definition

    from resolvers.query import Query
    from schema.session_reads import PURE_FIELDS
    from schema.types import Message, MessageConnection, MessageEdge, PageInfo, Session

    reviewed = {("Query", "session"), ("Session", "messages")}
    for cls in (Query, Session, MessageConnection, MessageEdge, PageInfo, Message):
        definition = get_object_definition(cls, strict=True)
        by_name = {
            field.graphql_name or _camel(field.python_name): field for field in definition.fields
        }
        for name in PURE_FIELDS[definition.name]:
            field = by_name[name]
            if (definition.name, name) not in reviewed:
                assert field.base_resolver is None, f"{definition.name}.{name} has a resolver"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
