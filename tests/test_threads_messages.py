"""Threads and cursor-paginated messages over GraphQL."""

from __future__ import annotations

import uuid

from starlette.applications import Starlette

from runtime.records import Role
from runtime.store import NewMessage
from tests.conftest import GraphQLClient, new_id

CREATE_SESSION = "mutation($id: ID!) { createSession(id: $id) { id } }"
CREATE_THREAD = """
mutation($s: ID!, $id: ID, $t: String) {
  createThread(sessionId: $s, id: $id, title: $t) { id sessionId title isPrimary }
}"""
MESSAGES = """
query($t: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  messages(threadId: $t, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { content seq role threadId toolCalls } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def add_messages(app: Starlette, session_id: str, thread_id: str, count: int) -> None:
    """Seed history through the runtime's one write path (sending messages through
    the API is the turns issue's); it keeps the session cache in step."""
    runtime = app.state.runtime
    session = await runtime.sessions.get(uuid.UUID(session_id))
    for n in range(count):
        _, session = await runtime.conversations.append(
            session,
            NewMessage(
                session_id=uuid.UUID(session_id),
                thread_id=uuid.UUID(thread_id),
                role=Role.USER if n % 2 == 0 else Role.ASSISTANT,
                content=f"m{n}",
                tool_calls=[{"name": "current_time", "arguments": {}}] if n == 1 else None,
            ),
        )


async def test_threads_create_rename_list_delete(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    chosen = new_id()
    created = (await gql.data(CREATE_THREAD, s=session_id, id=chosen, t=" Ideas "))["createThread"]
    assert created == {"id": chosen, "sessionId": session_id, "title": "Ideas", "isPrimary": False}

    renamed = await gql.data(
        'mutation($id: ID!) { renameThread(id: $id, title: "Plans") { title } }', id=chosen
    )
    assert renamed["renameThread"]["title"] == "Plans"
    listed = await gql.data(
        "query($id: ID!) { session(id: $id) { threads { id } } }", id=session_id
    )
    assert [t["id"] for t in listed["session"]["threads"]] == [session_id, chosen]

    deleted = await gql.data("mutation($id: ID!) { deleteThread(id: $id) { id } }", id=chosen)
    assert deleted["deleteThread"]["id"] == chosen
    fetched = await gql.data("query($id: ID!) { thread(id: $id) { id } }", id=chosen)
    assert fetched["thread"] is None


async def test_thread_id_conflict(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    error = await gql.error(CREATE_THREAD, s=session_id, id=session_id)
    assert error["extensions"]["code"] == "CONFLICT"


async def test_primary_thread_goes_only_with_its_session(gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    error = await gql.error("mutation($id: ID!) { deleteThread(id: $id) { id } }", id=session_id)
    assert error["extensions"]["code"] == "CONFLICT"
    assert "primary" in error["message"]
    still = await gql.data("query($id: ID!) { thread(id: $id) { isPrimary } }", id=session_id)
    assert still["thread"] == {"isPrimary": True}


async def test_thread_of_unknown_session_is_not_found(gql: GraphQLClient) -> None:
    error = await gql.error(CREATE_THREAD, s=new_id())
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_messages_page_forward(app: Starlette, gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    await add_messages(app, session_id, session_id, 7)

    contents: list[str] = []
    after = None
    while True:
        page = (await gql.data(MESSAGES, t=session_id, first=3, after=after))["messages"]
        contents += [edge["node"]["content"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert contents == [f"m{n}" for n in range(7)]


async def test_messages_page_backward_from_the_newest(app: Starlette, gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    await add_messages(app, session_id, session_id, 7)

    last = (await gql.data(MESSAGES, t=session_id, last=3))["messages"]
    assert [e["node"]["content"] for e in last["edges"]] == ["m4", "m5", "m6"]
    assert last["pageInfo"]["hasPreviousPage"] is True
    assert last["pageInfo"]["hasNextPage"] is False

    before = last["pageInfo"]["startCursor"]
    earlier = (await gql.data(MESSAGES, t=session_id, last=3, before=before))["messages"]
    assert [e["node"]["content"] for e in earlier["edges"]] == ["m1", "m2", "m3"]
    assert earlier["edges"][0]["node"]["toolCalls"] == [{"name": "current_time", "arguments": {}}]
    assert earlier["edges"][0]["node"]["role"] == "ASSISTANT"
    first = (
        await gql.data(MESSAGES, t=session_id, last=3, before=earlier["pageInfo"]["startCursor"])
    )["messages"]
    assert [e["node"]["content"] for e in first["edges"]] == ["m0"]
    assert first["pageInfo"]["hasPreviousPage"] is False


async def test_messages_are_per_thread(app: Starlette, gql: GraphQLClient) -> None:
    session_id = new_id()
    await gql.data(CREATE_SESSION, id=session_id)
    thread_id = (await gql.data(CREATE_THREAD, s=session_id))["createThread"]["id"]
    await add_messages(app, session_id, session_id, 2)
    await add_messages(app, session_id, thread_id, 3)
    other = (await gql.data(MESSAGES, t=thread_id, first=10))["messages"]["edges"]
    assert [e["node"]["seq"] for e in other] == [1, 2, 3]
    assert {e["node"]["threadId"] for e in other} == {thread_id}
    primary = await gql.data(
        "query($id: ID!) { session(id: $id) { messages(first: 10) { nodes { content } } } }",
        id=session_id,
    )
    assert [m["content"] for m in primary["session"]["messages"]["nodes"]] == ["m0", "m1"]
