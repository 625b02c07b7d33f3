"""Export and import over GraphQL and REST, on SQLite and PostgreSQL: a session with
tool calls, threads, system events, a rating, a memory, a pin and state exports,
imports (same app or another) and exports again identical apart from ids and
times; Markdown for people; bad documents refused whole, with the path of their
first error, and nothing written; a failure midway undone."""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from uuid import UUID

import httpx
import pytest
from starlette.applications import Starlette

from runtime.errors import InvalidInput
from runtime.imports import check
from tests.conftest import GraphQLClient, new_id, new_wallet
from tests.waiting import first_read

CREATE = """mutation($id: ID!, $k: String) {
  createSession(id: $id, publicKey: $k, title: "Sums", metadata: {plan: "pro"}) { id }
}"""
SEND = """mutation($s: ID!, $c: String!, $t: ID) {
  sendMessage(sessionId: $s, content: $c, threadId: $t) { id }
}"""
IDLE = "query($s: ID!) { session(id: $s) { isProcessing messages(last: 5) { nodes { id role } } } }"
EXPORT = "query($id: ID!, $f: ExportFormat) { exportSession(id: $id, format: $f) }"
IMPORT = "mutation($d: JSON!) { importSession(document: $d) { id app title isPinned } }"
LIST = "query($k: String!) { sessions(publicKey: $k) { nodes { id } } }"
TIMES = ("created_at", "updated_at", "last_active_at", "expires_at", "exported_at")


async def until_idle(gql: GraphQLClient, session_id: str) -> dict[str, Any]:
    read = await first_read(
        lambda: gql.data(IDLE, s=session_id),
        lambda read: not read["session"]["isProcessing"],
        "the answer",
    )
    return dict(read["session"])


async def rich_session(app: Starlette, gql: GraphQLClient, wallet: str) -> str:
    """A session with every part an export holds."""
    session_id = new_id()
    await gql.data(CREATE, id=session_id, k=wallet)
    await gql.data(SEND, s=session_id, c='/tool calculator {"expression": "2*21"}')
    await until_idle(gql, session_id)
    side = (
        await gql.data(
            'mutation($s: ID!) { createThread(sessionId: $s, title: "aside") { id } }',
            s=session_id,
        )
    )["createThread"]["id"]
    await gql.data(SEND, s=session_id, c="and this?", t=side)
    session = await until_idle(gql, session_id)
    answer = next(m["id"] for m in session["messages"]["nodes"] if m["role"] == "ASSISTANT")
    await gql.data(
        'mutation($m: ID!) { rateMessage(messageId: $m, stars: 5, comment: "right", '
        'clientId: "ann") { id } }',
        m=answer,
    )
    await gql.data(
        'mutation($s: ID!) { postSystemNotice(sessionId: $s, message: "maintenance") { id } }',
        s=session_id,
    )
    await gql.data(
        "mutation($s: ID!) { updateUserState(sessionId: $s, userState: {chain: 1}) { id } }",
        s=session_id,
    )
    await gql.data("mutation($id: ID!) { pinSession(id: $id) { id } }", id=session_id)
    app_name = (await gql.data("query($s: ID!) { session(id: $s) { app } }", s=session_id))[
        "session"
    ]["app"]
    await app.state.runtime.store.add_memory(
        app_name, wallet, UUID(session_id), "likes sums", cascade=True
    )
    return session_id


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """Without what an import makes anew: ids and times (docs/export-format.md)."""
    ids = {"id", "thread_id", "message_id", "session_id"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ids and k not in TIMES}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    stripped: dict[str, Any] = strip(document)
    return stripped


async def test_export_import_export_reads_the_same(
    app: Starlette, gql: GraphQLClient, alpha_key: str, beta_key: str
) -> None:
    alpha, beta = gql.with_key(alpha_key), gql.with_key(beta_key)
    wallet = new_wallet()
    session_id = await rich_session(app, alpha, wallet)
    first = json.loads((await alpha.data(EXPORT, id=session_id))["exportSession"])
    assert first["format"] == "confab.session/2"
    assert [len(t["messages"]) for t in first["threads"]] == [4, 2]
    assert first["feedback"][0]["stars"] == 5
    assert first["memories"][0]["content"] == "likes sums"

    imported = (await alpha.data(IMPORT, d=first))["importSession"]
    assert imported["id"] != session_id
    assert (imported["app"], imported["title"], imported["isPinned"]) == ("alpha", "Sums", True)
    again = json.loads((await alpha.data(EXPORT, id=imported["id"]))["exportSession"])
    assert comparable(again) == comparable(first)
    # The rating points at the new copy of the answer it rated.
    rated = again["feedback"][0]["message_id"]
    assert rated in {m["id"] for t in again["threads"] for m in t["messages"]}
    assert rated not in {m["id"] for t in first["threads"] for m in t["messages"]}

    # Into another app, with that app's key: the same, apart from the app.
    elsewhere = (await beta.data(IMPORT, d=first))["importSession"]
    assert elsewhere["app"] == "beta"
    moved = json.loads((await beta.data(EXPORT, id=elsewhere["id"]))["exportSession"])
    expected = comparable(first)
    expected["session"]["app"] = "beta"
    assert comparable(moved) == expected
    # Neither app sees the other's copy.
    error = await beta.error(EXPORT, id=session_id)
    assert error["extensions"]["code"] == "NOT_FOUND", error


async def test_rest_streams_the_same_document_and_markdown(
    app: Starlette, gql: GraphQLClient, client: httpx.AsyncClient, alpha_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    session_id = await rich_session(app, alpha, new_wallet())
    key = {"AOMI-APP-KEY": alpha_key}
    response = await client.get(f"/api/sessions/{session_id}/export", headers=key)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    whole = json.loads((await alpha.data(EXPORT, id=session_id))["exportSession"])
    assert comparable(response.json()) == comparable(whole)

    markdown = await client.get(
        f"/api/sessions/{session_id}/export", params={"format": "markdown"}, headers=key
    )
    assert markdown.headers["content-type"].startswith("text/markdown")
    text = re.sub(r"`[0-9a-f-]{36}`", "`ID`", markdown.text)
    text = re.sub(r"`0x[0-9a-f]{40}`", "`WALLET`", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+00:00)?", "TIME", text)
    text = re.sub(r"call_\d+_\d+", "CALL", text)
    assert text == MARKDOWN, text

    for bad, status in (({"format": "pdf"}, 400), ({}, 404)):
        url = f"/api/sessions/{session_id if bad else new_id()}/export"
        refused = await client.get(url, params=bad, headers=key)
        assert refused.status_code == status, refused.text


MARKDOWN = """# Sums

Session `ID` · app `alpha` · wallet `WALLET` · created TIME

## Thread: main

**User**

/tool calculator {"expression": "2*21"}

**Assistant**

Calls `calculator` (CALL) with:

```json
{
  "expression": "2*21"
}
```

**Tool**

Result of `calculator` (CALL):

```json
{
  "result": {
    "expression": "2*21",
    "value": 42
  }
}
```

**Assistant**

Tool results: calculator: {"result": {"expression": "2*21", "value": 42}}

## Thread: aside

**User**

and this?

**Assistant**

You said: and this?

## System events

- TIME `notice`: {"message": "maintenance"}

## Feedback

- `ann` on message `ID`: 5/5: right
"""


def _document() -> dict[str, Any]:
    return {
        "format": "confab.session/2",
        "session": {"title": "t", "public_key": None, "state": {}, "metadata": {}},
        "threads": [
            {
                "title": None,
                "is_primary": True,
                "messages": [
                    {"id": "m1", "role": "user", "content": "hi"},
                    {"id": "m2", "role": "assistant", "content": "hello"},
                ],
            }
        ],
        "feedback": [{"message_id": "m2", "client_id": "ann", "thumbs": "up"}],
    }


BAD_DOCUMENTS: list[tuple[str, Any, str]] = [
    ("wrong version", {"format": "confab.session/9"}, "format: must be one of"),
    ("not an object", [1, 2], "document: must be a JSON object"),
    ("no session", {"format": "confab.session/2", "threads": []}, "session: must be"),
    ("no primary", "threads.0.is_primary=false", "threads: must have exactly one primary"),
    ("bad role", "threads.0.messages.0.role=wizard", "threads[0].messages[0].role: must be"),
    ("missing content type", "threads.0.messages.1.content=7", "threads[0].messages[1].content"),
    ("a rating of an unknown message", "feedback.0.message_id=elsewhere", "feedback[0].message_id"),
    ("a rating of a user message", "feedback.0.message_id=m1", "feedback[0].message_id"),
    ("stars out of range", "feedback.0.stars=9", "feedback[0]: must have exactly one"),
    ("bad wallet", "session.public_key=0xnope", "session.public_key"),
    ("memories without a wallet", 'memories=[{"content": "x"}]', "memories: a session without"),
]


def _bad(change: Any) -> Any:
    if not isinstance(change, str):
        return change
    document = _document()
    path, _, raw = change.partition("=")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    target: Any = document
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    target[keys[-1]] = value
    return document


@pytest.mark.parametrize(
    ("label", "change", "error"), BAD_DOCUMENTS, ids=[b[0] for b in BAD_DOCUMENTS]
)
def test_a_bad_document_names_its_first_error(label: str, change: Any, error: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check(_bad(change))
    assert error in str(refused.value), label


async def test_a_refused_or_failed_import_writes_nothing(
    app: Starlette, gql: GraphQLClient, alpha_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = gql.with_key(alpha_key)
    wallet = new_wallet()
    document = _document()
    document["session"]["public_key"] = wallet
    refused = copy.deepcopy(document)
    refused["threads"][0]["messages"][1]["role"] = "wizard"
    error = await alpha.error(IMPORT, d=refused)
    assert error["extensions"]["code"] == "INVALID_INPUT", error
    assert "threads[0].messages[1].role" in error["message"]
    assert (await alpha.data(LIST, k=wallet))["sessions"]["nodes"] == []
    too_many = copy.deepcopy(document)
    too_many["threads"] = [too_many["threads"][0]] * 1_001
    error = await alpha.error(IMPORT, d=too_many)
    assert "threads: must have at most 1000 entries" in error["message"], error

    # A write that fails midway (the rating, after the messages): undone whole.
    store = app.state.runtime.store

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(store, "rate", broken)
    error = await alpha.error(IMPORT, d=document)
    assert error["extensions"]["code"] == "INTERNAL", error
    assert (await alpha.data(LIST, k=wallet))["sessions"]["nodes"] == []
    monkeypatch.undo()
    imported = (await alpha.data(IMPORT, d=document))["importSession"]
    assert (await alpha.data(LIST, k=wallet))["sessions"]["nodes"] == [{"id": imported["id"]}]
