"""Full-text search over GraphQL, on SQLite and PostgreSQL: ranked hits in message
text, tool names and titles, with highlighted snippets and the message's cursor;
every filter; pages; the web-search syntax; app isolation; hits gone with what is
deleted (by a client or the janitor) or edited; per-app languages; bad input.

Each test searches for words of its own (`word()`), since the worker's database
holds every earlier test's sessions."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from starlette.applications import Starlette
from tortoise import connections

from apps_config import load_apps
from runtime.keys import create_key
from settings import Settings
from tests.conftest import GraphQLClient, new_wallet, serving
from tests.waiting import until

SEARCH = """query($q: String!, $first: Int, $after: String, $k: String, $t: ID, $r: Role,
    $a: Boolean, $since: DateTime, $until: DateTime) {
  search(query: $q, first: $first, after: $after, publicKey: $k, threadId: $t, role: $r,
      archived: $a, since: $since, until: $until) {
    hits {
      kind rank snippet parts { text highlighted } threadId cursor
      session { id title }
      message { id role content cursor threadId createdAt }
    }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
IMPORT = "mutation($d: JSON!) { importSession(document: $d) { id threads { id isPrimary } } }"
NEXT_MESSAGE = """query($t: ID!, $after: String!) {
  messages(threadId: $t, first: 1, after: $after) { nodes { content } }
}"""
DELETE_THREAD = "mutation($id: ID!) { deleteThread(id: $id) { deleted } }"
DELETE_SESSION = "mutation($id: ID!) { deleteSession(id: $id) { deleted } }"


def word() -> str:
    """A word no other test writes (letters only, so no stemmer changes it)."""
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def message(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def document(
    messages: list[dict[str, Any]],
    *,
    title: str | None = None,
    wallet: str | None = None,
    archived: bool = False,
    thread: tuple[str | None, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    threads: list[dict[str, Any]] = [{"title": None, "is_primary": True, "messages": messages}]
    if thread is not None:
        threads.append({"title": thread[0], "is_primary": False, "messages": thread[1]})
    return {
        "format": "confab.session/2",
        "session": {"title": title, "public_key": wallet, "is_archived": archived},
        "threads": threads,
    }


async def imported(gql: GraphQLClient, doc: dict[str, Any]) -> tuple[str, str | None]:
    """The new session's id, and its second thread's (if any)."""
    session = (await gql.data(IMPORT, d=doc))["importSession"]
    others = [t["id"] for t in session["threads"] if not t["isPrimary"]]
    return session["id"], others[0] if others else None


async def hits(gql: GraphQLClient, query: str, **filters: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await gql.data(SEARCH, q=query, **filters))["search"]["hits"]
    return found


def highlighted(hit: dict[str, Any]) -> list[str]:
    return [part["text"].lower() for part in hit["parts"] if part["highlighted"]]


async def test_hits_are_ranked_with_snippets_titles_tool_names_and_cursors(
    gql: GraphQLClient, alpha_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    w = word()
    calls = [{"call_id": "c1", "tool_name": f"{w}_forecast", "arguments": {"city": "Paris"}}]
    session_id, thread_id = await imported(
        alpha,
        document(
            [
                message(
                    "user",
                    f"Will it rain in Paris over the {w} weekend? We plan to walk around "
                    "the old town for hours and would rather stay dry.",
                ),
                message("assistant", f"{w} {w} {w}: rain is likely."),
                message("assistant", "", tool_calls=calls),
                message("tool", "12 degrees", tool_results=[{**calls[0], "content": "12"}]),
            ],
            title=f"Trip {w} planning",
            thread=(f"{w} packing list", [message("user", "socks and a raincoat")]),
        ),
    )
    found = await hits(alpha, w)
    assert sorted(hit["kind"] for hit in found) == [
        "MESSAGE", "MESSAGE", "MESSAGE", "MESSAGE", "SESSION", "THREAD",
    ]  # fmt: skip
    ranks = [hit["rank"] for hit in found]
    assert ranks == sorted(ranks, reverse=True)
    assert all(w in highlighted(hit) for hit in found), found
    assert all(hit["session"] == {"id": session_id, "title": f"Trip {w} planning"} for hit in found)
    by_content = {hit["message"]["content"]: hit for hit in found if hit["kind"] == "MESSAGE"}
    often, once = by_content[f"{w} {w} {w}: rain is likely."], by_content[next(
        content for content in by_content if content.startswith("Will it rain")
    )]  # fmt: skip
    assert often["rank"] > once["rank"]
    assert "Paris" in once["snippet"]
    # Tool names: the call and its result.
    assert {by_content[""]["message"]["role"], by_content["12 degrees"]["message"]["role"]} == {
        "ASSISTANT",
        "TOOL",
    }
    assert (await hits(alpha, "forecast " + w))[0]["message"]["content"] in {"", "12 degrees"}
    [thread_hit] = [hit for hit in found if hit["kind"] == "THREAD"]
    assert thread_hit["threadId"] == thread_id
    assert thread_hit["message"] is None
    assert thread_hit["snippet"] == f"{w} packing list"
    # The message's cursor pages its thread from there.
    following = await alpha.data(NEXT_MESSAGE, t=session_id, after=once["message"]["cursor"])
    assert following["messages"]["nodes"] == [{"content": f"{w} {w} {w}: rain is likely."}]


async def test_web_search_syntax_phrases_or_and_exclusion(
    gql: GraphQLClient, alpha_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    w, other, third = word(), word(), word()
    await imported(
        alpha,
        document(
            [
                message("user", f"heavy rain {w}"),
                message("user", f"rain, heavy {w} {other}"),
                message("user", f"snow {w} {third}"),
            ]
        ),
    )

    async def contents(query: str) -> set[str]:
        return {hit["message"]["content"] for hit in await hits(alpha, query)}

    assert await contents(f'{w} "heavy rain"') == {f"heavy rain {w}"}
    assert await contents(f"{w} -snow") == {f"heavy rain {w}", f"rain, heavy {w} {other}"}
    assert await contents(f"{other} or {third}") == {
        f"rain, heavy {w} {other}",
        f"snow {w} {third}",
    }
    assert await contents(f"{w} {other}") == {f"rain, heavy {w} {other}"}
    # Punctuation is no syntax error in either database.
    assert await contents(f'{other} ( * : "^ {w}') == {f"rain, heavy {w} {other}"}


async def test_every_filter(gql: GraphQLClient, alpha_key: str) -> None:
    alpha = gql.with_key(alpha_key)
    w, wallet = word(), new_wallet()
    first, thread = await imported(
        alpha,
        document(
            [message("user", f"{w} one"), message("assistant", f"{w} two")],
            wallet=wallet,
            thread=(None, [message("user", f"{w} three")]),
        ),
    )
    second, _ = await imported(
        alpha, document([message("user", f"{w} four")], archived=True, title=f"{w} old")
    )

    async def contents(**filters: Any) -> list[str]:
        found = await hits(alpha, w, **filters)
        return sorted(hit["message"]["content"] if hit["message"] else "title" for hit in found)

    assert await contents() == ["title", f"{w} four", f"{w} one", f"{w} three", f"{w} two"]
    assert await contents(k=wallet) == [f"{w} one", f"{w} three", f"{w} two"]
    assert await contents(t=thread) == [f"{w} three"]
    assert await contents(r="ASSISTANT") == [f"{w} two"]
    assert await contents(r="USER", a=False) == [f"{w} one", f"{w} three"]
    assert await contents(a=True) == ["title", f"{w} four"]
    read = await alpha.data("query($id: ID!) { session(id: $id) { createdAt } }", id=second)
    later = read["session"]["createdAt"]  # after everything of the first session
    assert await contents(since=later) == ["title", f"{w} four"]
    assert await contents(until=later) == [f"{w} one", f"{w} three", f"{w} two"]
    assert await contents(k=new_wallet()) == []
    assert {hit["session"]["id"] for hit in await hits(alpha, w, k=wallet)} == {first}
    assert {hit["session"]["id"] for hit in await hits(alpha, w, a=True)} == {second}


async def test_pages_follow_one_another_without_gaps_or_repeats(
    gql: GraphQLClient, alpha_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    w = word()
    # Equal texts rank equally: the order breaks ties by id, page after page.
    await imported(alpha, document([message("user", f"{w} again") for _ in range(5)]))
    await imported(alpha, document([message("user", f"{w} {w} more") for _ in range(2)]))
    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = (await alpha.data(SEARCH, q=w, first=3, after=after))["search"]
        pages.append((len(page["hits"]), page["pageInfo"]["hasNextPage"]))
        seen += [hit["message"]["id"] for hit in page["hits"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == [(3, True), (3, True), (1, False)]
    assert len(set(seen)) == 7
    everything = await hits(alpha, w, first=50)
    assert [hit["message"]["id"] for hit in everything] == seen


async def test_another_apps_key_never_finds_the_text(
    gql: GraphQLClient, alpha_key: str, beta_key: str
) -> None:
    alpha, beta = gql.with_key(alpha_key), gql.with_key(beta_key)
    w = word()
    await imported(alpha, document([message("user", f"secret {w}")], title=f"{w} title"))
    await imported(beta, document([message("user", f"beta's own {w}")]))
    assert [hit["message"]["content"] for hit in await hits(beta, w)] == [f"beta's own {w}"]
    assert {hit["snippet"] for hit in await hits(alpha, w)} >= {f"secret {w}", f"{w} title"}
    assert "beta's own" not in str(await hits(alpha, w))
    assert await hits(gql, w) == []  # no key: the default app's sessions only


async def index_entries(text: str) -> int:
    """How many rows the database's own search index still holds for `text`."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        sql = (
            "SELECT count(*) AS n FROM messages "
            "WHERE search_vector @@ plainto_tsquery('english', $1)"
        )
        rows = await client.execute_query_dict(sql, [text])
    else:
        sql = "SELECT count(*) AS n FROM message_search WHERE message_search MATCH ?"
        rows = await client.execute_query_dict(sql, [f'"{text}"'])
    return int(rows[0]["n"])


async def test_deleted_and_edited_messages_leave_the_index(
    app: Starlette, gql: GraphQLClient, alpha_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    w = word()
    session_id, thread_id = await imported(
        alpha,
        document([message("user", f"{w} stays")], thread=(None, [message("user", f"{w} goes")])),
    )
    assert len(await hits(alpha, w)) == 2
    await alpha.data(DELETE_THREAD, id=thread_id)
    assert [hit["message"]["content"] for hit in await hits(alpha, w)] == [f"{w} stays"]
    assert await index_entries(w) == 1

    # An edit (as branching will make them) re-indexes the row.
    fresh = word()
    client = connections.get("default")
    values: list[object] = [UUID(session_id)]
    sql = "UPDATE messages SET content = $1 WHERE session_id = $2"
    if client.capabilities.dialect != "postgres":
        values, sql = [session_id], sql.replace("$1", "?").replace("$2", "?")
    await client.execute_query(sql, [f"{fresh} now", *values])
    assert await hits(alpha, w) == []
    assert [hit["snippet"] for hit in await hits(alpha, fresh)] == [f"{fresh} now"]

    await alpha.data(DELETE_SESSION, id=session_id)
    assert await hits(alpha, fresh) == []
    assert await index_entries(fresh) == 0


async def test_the_janitors_deletions_leave_the_index(app: Starlette, gql: GraphQLClient) -> None:
    clear, _ = await create_key(["ephemeral"], "tests")  # session_ttl = 1 s
    ephemeral = gql.with_key(clear)
    w = word()
    await imported(ephemeral, document([message("user", f"{w} fleeting")], title=f"{w} brief"))
    assert len(await hits(ephemeral, w)) == 2

    async def hidden() -> bool:
        return await hits(ephemeral, w) == []

    await until(hidden, "the expired session to leave the results")
    await app.state.runtime.janitor.sweep()
    assert await index_entries(w) == 0


async def test_each_app_stems_in_its_own_language(postgres_url: str, apps_file: Path) -> None:
    """PostgreSQL only: SQLite's FTS5 index stems English whatever the app's language."""
    apps = load_apps(apps_file)
    settings = Settings(database_url=postgres_url, config_file=str(apps_file), apps=apps)
    w = word()
    async with serving(settings) as (_, http):
        alpha_key, _ = await create_key(["alpha"], "search tests")
        beta_key, _ = await create_key(["beta"], "search tests")
        alpha, beta = GraphQLClient(http, alpha_key), GraphQLClient(http, beta_key)
        await imported(alpha, document([message("user", f"running {w}")]))
        await imported(beta, document([message("user", f"running {w}")]))
        assert len(await hits(alpha, f"run {w}")) == 1  # english
        assert await hits(beta, f"run {w}") == []  # simple: no stemming
        assert len(await hits(beta, f"running {w}")) == 1

    # beta turns English: its new rows at once, the old ones after a reindex.
    english = dataclasses.replace(settings.apps["beta"], search_language="english")
    async with serving(settings.with_overrides(apps={**settings.apps, "beta": english})) as (
        application,
        http,
    ):
        beta = GraphQLClient(http, beta_key)
        assert await hits(beta, f"run {w}") == []
        await imported(beta, document([message("user", f"runs {w}")]))
        assert [hit["message"]["content"] for hit in await hits(beta, f"run {w}")] == [f"runs {w}"]
        assert await application.state.runtime.store.reindex_search() >= 1
        assert len(await hits(beta, f"run {w}")) == 2


BAD_SEARCHES: list[tuple[dict[str, Any], str]] = [
    ({"q": ""}, "query: has no words to search for"),
    ({"q": "  \t "}, "query: has no words to search for"),
    ({"q": '"" * - :'}, "query: has no words to search for"),
    ({"q": "-only -excluded"}, "query: must name a word to find"),
    ({"q": "x" * 257}, "query: must be at most 256 characters"),
    ({"q": " ".join(f"w{i}" for i in range(17))}, "query: must have at most 16 words"),
    ({"q": "rain", "first": 0}, "first: must be between 1 and 50"),
    ({"q": "rain", "first": 51}, "first: must be between 1 and 50"),
    ({"q": "rain", "after": "bm90IGEgY3Vyc29y"}, "after: is not a cursor this API issued"),
    ({"q": "rain", "t": "not-a-thread"}, "threadId"),
    ({"q": "rain", "k": "0xnope"}, "publicKey"),
    ({"q": "rain", "since": "2026-02-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
]


@pytest.mark.parametrize(("variables", "problem"), BAD_SEARCHES)
async def test_bad_searches_are_invalid_input(
    gql: GraphQLClient, alpha_key: str, variables: dict[str, Any], problem: str
) -> None:
    error = await gql.with_key(alpha_key).error(SEARCH, **variables)
    assert error["extensions"]["code"] == "INVALID_INPUT", error
    assert problem in error["message"], error


async def test_rest_search_for_legacy_style_clients(
    client: httpx.AsyncClient, gql: GraphQLClient, alpha_key: str
) -> None:
    w, wallet = word(), new_wallet()
    alpha = gql.with_key(alpha_key)
    session_id, _ = await imported(
        alpha, document([message("user", f"{w} one"), message("assistant", f"{w} two")])
    )
    keyed = {"AOMI-APP-KEY": alpha_key}
    response = await client.get("/api/search", params={"q": w, "limit": 1}, headers=keyed)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["has_more"] is True
    [hit] = page["hits"]
    assert hit["kind"] == "message"
    assert hit["session_id"] == session_id
    assert hit["message"]["content"] in {f"{w} one", f"{w} two"}
    assert {"text": w, "highlighted": True} in hit["parts"]
    rest = await client.get(
        "/api/search", params={"q": w, "cursor": page["next_cursor"]}, headers=keyed
    )
    assert rest.status_code == 200, rest.text
    [second] = rest.json()["hits"]
    assert {hit["message"]["content"], second["message"]["content"]} == {f"{w} one", f"{w} two"}
    assert rest.json()["next_cursor"] is None
    only = await client.get("/api/search", params={"q": w, "role": "assistant"}, headers=keyed)
    assert [h["message"]["role"] for h in only.json()["hits"]] == ["assistant"]

    # Keyless: a wallet's sessions of `default` only (alpha's stay unseen).
    await imported(gql, document([message("user", f"{w} open")], wallet=wallet))
    keyless = await client.get("/api/search", params={"q": w, "public_key": wallet})
    assert [h["message"]["content"] for h in keyless.json()["hits"]] == [f"{w} open"]
    refused = await client.get("/api/search", params={"q": w})
    assert refused.status_code == 400
    assert "public_key" in refused.json()["error"]


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({}, "query: has no words"),
        ({"q": "x" * 300}, "at most 256"),
        ({"q": "rain", "limit": "99"}, "limit must be between 1 and 50"),
        ({"q": "rain", "role": "wizard"}, "role must be one of"),
        ({"q": "rain", "archived": "maybe"}, "archived must be one of"),
        ({"q": "rain", "since": "yesterday"}, "since must be an ISO 8601 time"),
        ({"q": "rain", "cursor": "nope"}, "cursor: is not a cursor this API issued"),
        ({"q": "rain", "thread_id": "nope"}, "thread_id"),
    ],
)
async def test_rest_bad_searches_are_400(
    client: httpx.AsyncClient, alpha_key: str, params: dict[str, str], problem: str
) -> None:
    response = await client.get("/api/search", params=params, headers={"AOMI-APP-KEY": alpha_key})
    assert response.status_code == 400, response.text
    assert problem in response.json()["error"], response.text
