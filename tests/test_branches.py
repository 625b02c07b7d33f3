"""Branches over GraphQL and REST, on SQLite and PostgreSQL: editing a user message
makes a new version that the assistant answers; reads follow the active path
(pages both ways, the REST snapshot); switching goes back and forth and remembers
the versions chosen below; other tabs hear `message_edited` and `branch_switched`;
bad edits, busy sessions and the limits are refused with nothing written; a flat
thread of an earlier release becomes a single path."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from starlette.applications import Starlette
from tortoise import Tortoise
from tortoise.migrations.api.migrate import migrate

from runtime.database import forget_compiled_queries, tortoise_config
from settings import Settings, load_apps
from tests.conftest import GraphQLClient, new_id, serving
from tests.waiting import first_read

SEND = """mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id } }"""
PATH = """query($s: ID!) {
  session(id: $s) {
    isProcessing
    messages(last: 20) {
      nodes { id role content parentId }
    }
  }
}"""
EDIT = """mutation($id: ID!, $c: String!) {
  editMessage(id: $id, content: $c) { id role content parentId }
}"""
SWITCH = """mutation($m: ID!) { switchBranch(messageId: $m) { id version } }"""
PAGE = """query($t: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  messages(threadId: $t, first: $first, after: $after, last: $last, before: $before) {
    nodes { content cursor }
    pageInfo { hasNextPage hasPreviousPage }
  }
}"""


VERSIONS = "query($id: ID!) { messageVersions(id: $id) { count index ids } }"


async def versions(gql: GraphQLClient, message_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await gql.data(VERSIONS, id=message_id))["messageVersions"]
    return found


async def idle_path(gql: GraphQLClient, session_id: str) -> list[dict[str, Any]]:
    """The session's active path once it has answered."""
    read = await first_read(
        lambda: gql.data(PATH, s=session_id),
        lambda read: not read["session"]["isProcessing"],
        "the answer",
    )
    nodes: list[dict[str, Any]] = read["session"]["messages"]["nodes"]
    return nodes


def contents(path: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in path]


async def chat(gql: GraphQLClient, *questions: str) -> tuple[str, list[dict[str, Any]]]:
    session_id = new_id()
    for question in questions:
        await gql.data(SEND, s=session_id, c=question)
        path = await idle_path(gql, session_id)
    return session_id, path


async def test_edit_answers_the_new_version_and_switching_goes_back_and_forth(
    app: Starlette, gql: GraphQLClient, client: httpx.AsyncClient
) -> None:
    session_id, before = await chat(gql, "first question", "second question")
    assert contents(before) == [
        "first question", "You said: first question", "second question",
        "You said: second question",
    ]  # fmt: skip
    assert [m["parentId"] for m in before] == [None, *(m["id"] for m in before[:-1])]
    second = before[2]

    edited = (await gql.data(EDIT, id=second["id"], c="second, edited"))["editMessage"]
    assert edited["parentId"] == second["parentId"]
    assert await versions(gql, edited["id"]) == {
        "count": 2,
        "index": 1,
        "ids": [second["id"], edited["id"]],
    }
    after = await idle_path(gql, session_id)
    assert contents(after) == [
        "first question", "You said: first question", "second, edited",
        "You said: second, edited",
    ]  # fmt: skip
    # The legacy snapshot shows the active path only.
    state = (await client.get("/api/state", headers={"X-Session-Id": session_id})).json()
    assert [m["content"] for m in state["messages"]] == contents(after)

    await gql.data(SWITCH, m=second["id"])
    back = (await gql.data(PATH, s=session_id))["session"]["messages"]["nodes"]
    assert contents(back) == contents(before)
    assert (await versions(gql, back[2]["id"]))["index"] == 0
    # Switching to the edit's first message goes down to its answer again.
    await gql.data(SWITCH, m=edited["id"])
    assert contents((await gql.data(PATH, s=session_id))["session"]["messages"]["nodes"]) == (
        contents(after)
    )

    # The next message follows the active path.
    await gql.data(SEND, s=session_id, c="third")
    latest = await idle_path(gql, session_id)
    assert contents(latest)[-2:] == ["third", "You said: third"]
    assert latest[-2]["parentId"] == after[-1]["id"]

    runtime = app.state.runtime
    log = await runtime.events.read_log(UUID(session_id), 0)
    kinds = [e.type for e in log.events]
    assert kinds.count("message_edited") == 1
    assert kinds.count("branch_switched") == 2
    edited_event = next(e for e in log.events if e.type == "message_edited")
    assert edited_event.data["replaces_id"] == second["id"]
    assert edited_event.data["message"]["parent_id"] == second["parentId"]
    switched = [e.data for e in log.events if e.type == "branch_switched"]
    assert switched[0] == {
        "thread_id": session_id,
        "message_id": second["id"],
        "leaf_id": before[-1]["id"],
    }


REGENERATE = """mutation($m: ID!, $model: String) {
  regenerate(messageId: $m, model: $model) { id model isProcessing }
}"""


async def test_regenerate_answers_again_beside_the_old_answer(
    app: Starlette, gql: GraphQLClient, alpha_key: str, client: httpx.AsyncClient
) -> None:
    alpha = gql.with_key(alpha_key)
    session_id, (question, answer) = await chat(alpha, "hello")
    regenerated = await alpha.data(REGENERATE, m=answer["id"], model="builtin-large")
    assert regenerated["regenerate"]["model"] == "builtin-large"
    path = await idle_path(alpha, session_id)
    assert path[0]["id"] == question["id"]
    again = path[1]
    assert again["id"] != answer["id"]
    assert (again["role"], again["content"], again["parentId"]) == (
        "ASSISTANT", "You said: hello", question["id"],
    )  # fmt: skip
    assert await versions(alpha, again["id"]) == {
        "count": 2,
        "index": 1,
        "ids": [answer["id"], again["id"]],
    }
    keyed = {"X-Session-Id": session_id, "AOMI-APP-KEY": alpha_key}
    state = (await client.get("/api/state", headers=keyed)).json()
    assert [m["content"] for m in state["messages"]] == ["hello", "You said: hello"]
    assert len(state["messages"]) == 2

    await alpha.data(SWITCH, m=answer["id"])
    back = (await alpha.data(PATH, s=session_id))["session"]["messages"]["nodes"]
    assert [m["id"] for m in back] == [question["id"], answer["id"]]

    log = await app.state.runtime.events.read_log(UUID(session_id), 0)
    added = [e.data["message"] for e in log.events if e.type == "message_added"]
    assert added[-1]["id"] == again["id"]
    assert added[-1]["parent_id"] == question["id"]
    for variables, problem in [
        ({"m": question["id"]}, "only the assistant's answers"),
        ({"m": answer["id"], "model": "gpt-nope"}, "model"),
    ]:
        error = await alpha.error(REGENERATE, **variables)
        assert error["extensions"]["code"] == "INVALID_INPUT", error
        assert problem in error["message"], error
    final = (await alpha.data(PATH, s=session_id))["session"]["messages"]["nodes"]
    assert [m["id"] for m in final] == [question["id"], answer["id"]]


async def test_search_follows_the_active_path_unless_asked_for_every_version(
    gql: GraphQLClient,
) -> None:
    old, new = "zqbranchold" + new_id()[:8].replace("-", ""), "zqbranchnew" + new_id()[:8]
    session_id, path = await chat(gql, f"about {old}")
    await gql.data(EDIT, id=path[0]["id"], c=f"about {new}")
    await idle_path(gql, session_id)
    search = """query($q: String!, $all: Boolean!) {
      search(query: $q, allVersions: $all) { hits { message { id content } } }
    }"""

    async def found(text: str, every: bool) -> set[str]:
        hits = (await gql.data(search, q=text, all=every))["search"]["hits"]
        return {hit["message"]["content"] for hit in hits if hit["message"]}  # not titles

    assert await found(old, False) == set()
    assert await found(old, True) == {f"about {old}", f"You said: about {old}"}
    assert await found(new, False) == {f"about {new}", f"You said: about {new}"}


async def test_pages_follow_the_active_path_both_ways(gql: GraphQLClient) -> None:
    session_id, before = await chat(gql, "one", "two", "three")
    await gql.data(EDIT, id=before[2]["id"], c="two again")
    await idle_path(gql, session_id)
    expected = ["one", "You said: one", "two again", "You said: two again"]
    forward: list[str] = []
    after = None
    while True:
        page = (await gql.data(PAGE, t=session_id, first=1, after=after))["messages"]
        forward += [n["content"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["nodes"][-1]["cursor"]
    assert forward == expected
    backward: list[str] = []
    before_cursor = None
    while True:
        page = (await gql.data(PAGE, t=session_id, last=1, before=before_cursor))["messages"]
        backward[:0] = [n["content"] for n in page["nodes"]]
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before_cursor = page["nodes"][0]["cursor"]
    assert backward == expected


async def test_bad_edits_and_switches_change_nothing(
    gql: GraphQLClient, alpha_key: str, beta_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    session_id, path = await chat(alpha, "hello")
    question, answer = path
    cases = [
        (alpha, EDIT, {"id": answer["id"], "c": "x"}, "INVALID_INPUT", "only the user's"),
        (alpha, EDIT, {"id": question["id"], "c": "   "}, "INVALID_INPUT", "content"),
        (alpha, EDIT, {"id": "nope", "c": "x"}, "INVALID_INPUT", "id"),
        (alpha, EDIT, {"id": new_id(), "c": "x"}, "NOT_FOUND", "not found"),
        (gql.with_key(beta_key), EDIT, {"id": question["id"], "c": "x"}, "NOT_FOUND", "not found"),
        (gql.with_key(beta_key), SWITCH, {"m": question["id"]}, "NOT_FOUND", "not found"),
    ]
    for client, operation, variables, code, text in cases:
        error = await client.error(operation, **variables)
        assert error["extensions"]["code"] == code, (variables, error)
        assert text in error["message"], error
    assert (await alpha.data(PATH, s=session_id))["session"]["messages"]["nodes"] == path


async def test_a_busy_session_is_not_branched(app: Starlette, gql: GraphQLClient) -> None:
    session_id, path = await chat(gql, "hello")
    await gql.data(SEND, s=session_id, c="/slow 30 a long story")
    error = await gql.error(EDIT, id=path[0]["id"], c="hello again")
    assert error["extensions"]["code"] == "CONFLICT", error
    error = await gql.error(SWITCH, m=path[0]["id"])
    assert error["extensions"]["code"] == "CONFLICT", error
    await gql.data("mutation($s: ID!) { interrupt(sessionId: $s) { id } }", s=session_id)
    final = await idle_path(gql, session_id)
    assert [(await versions(gql, m["id"]))["count"] for m in final] == [1] * len(final)


async def test_limits_on_versions_and_depth(settings: Settings) -> None:
    limited = settings.with_overrides(branch_max_siblings=2, branch_max_depth=2)
    async with serving(limited) as (_, http):
        gql = GraphQLClient(http)
        session_id, path = await chat(gql, "one", "two")
        await gql.data(EDIT, id=path[0]["id"], c="one, again")
        await idle_path(gql, session_id)
        error = await gql.error(EDIT, id=path[0]["id"], c="one, a third time")
        assert error["extensions"]["code"] == "INVALID_INPUT", error
        assert "has 2 versions, the most a message may have" in error["message"]
        await gql.data(SWITCH, m=path[0]["id"])
        error = await gql.error(EDIT, id=path[2]["id"], c="too deep")  # 2 messages above it
        assert error["extensions"]["code"] == "INVALID_INPUT", error
        assert "too deep to branch from" in error["message"]
        assert contents(await idle_path(gql, session_id)) == contents(path)


async def test_two_edits_at_once_make_two_branches_one_active(gql: GraphQLClient) -> None:
    session_id, path = await chat(gql, "hello")
    outcomes = await asyncio.gather(
        gql.raw(EDIT, id=path[0]["id"], c="hello, A"),
        gql.raw(EDIT, id=path[0]["id"], c="hello, B"),
    )
    made = [o["data"]["editMessage"] for o in outcomes if o.get("data")]
    refused = [o["errors"][0]["extensions"]["code"] for o in outcomes if o.get("errors")]
    # One at a time: the second finds the first answering (CONFLICT), or both land.
    assert len(made) + len(refused) == 2
    assert set(refused) <= {"CONFLICT"}
    final = await idle_path(gql, session_id)
    assert (await versions(gql, final[0]["id"]))["count"] == 1 + len(made)
    assert final[0]["content"] in {m["content"] for m in made}


STAMP = "2026-11-01 08:00:00.000000+00:00"


async def test_a_flat_thread_of_an_earlier_release_becomes_one_path(
    tmp_path: Path, apps_file: Path
) -> None:
    path = tmp_path / "flat.sqlite3"
    settings = Settings(
        database_url=f"sqlite://{path}", config_file=str(apps_file), apps=load_apps(apps_file)
    )
    forget_compiled_queries()
    try:
        await migrate(config=tortoise_config(settings), target="models.0010_search")
    finally:
        await Tortoise.close_connections()
    session_id = new_id()
    ids = [new_id() for _ in range(3)]
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO sessions (id, app_id, title_source, state, metadata, is_archived, "
            "is_processing, is_pinned, version, events_read_upto, last_event_id, created_at, "
            "updated_at, last_active_at) VALUES (?, 'default', 'default', '{}', '{}', 0, 0, 0, "
            "1, 0, 0, ?, ?, ?)",
            (session_id, STAMP, STAMP, STAMP),
        )
        db.execute(
            "INSERT INTO threads (id, session_id, is_primary, next_seq, created_at, updated_at) "
            "VALUES (?, ?, 1, 4, ?, ?)",
            (session_id, session_id, STAMP, STAMP),
        )
        for seq, (id, role) in enumerate(
            zip(ids, ("user", "assistant", "user"), strict=True), start=1
        ):
            db.execute(
                "INSERT INTO messages (id, session_id, thread_id, seq, role, content, "
                "is_interrupted, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                (id, session_id, session_id, seq, role, f"old {seq}", STAMP),
            )
    async with serving(settings) as (_, http):  # migrates to the latest schema
        gql = GraphQLClient(http)
        old = (await gql.data(PATH, s=session_id))["session"]["messages"]["nodes"]
        assert contents(old) == ["old 1", "old 2", "old 3"]
        assert [m["parentId"] for m in old] == [None, ids[0], ids[1]]
        await gql.data(SEND, s=session_id, c="new")
        now = await idle_path(gql, session_id)
        assert contents(now) == ["old 1", "old 2", "old 3", "new", "You said: new"]
        assert now[3]["parentId"] == ids[2]  # after the migrated thread's leaf
        await gql.data(EDIT, id=ids[2], c="old 3, edited")
        assert contents(await idle_path(gql, session_id))[2:] == [
            "old 3, edited",
            "You said: old 3, edited",
        ]
