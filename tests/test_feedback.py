"""Feedback on assistant messages over GraphQL, on SQLite and PostgreSQL: one rating
per message per client, changeable; listed per session and per app (pages);
announced as `feedback_changed`; counted in the metrics; exported with the
session; never across apps; bad ratings refused with nothing written."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
from starlette.applications import Starlette

from runtime.exports import export_session
from tests.conftest import GraphQLClient, new_id, new_wallet
from tests.waiting import first_read

SEND = """mutation($s: ID!, $c: String!, $k: String) {
  sendMessage(sessionId: $s, content: $c, publicKey: $k) { id }
}"""
READ = """query($s: ID!) {
  session(id: $s) {
    isProcessing
    messages(last: 10) { nodes { id role } }
    feedback { messageId clientId thumbs stars comment }
  }
}"""
RATE = """mutation($m: ID!, $t: Thumbs, $s: Int, $c: String, $who: String) {
  rateMessage(messageId: $m, thumbs: $t, stars: $s, comment: $c, clientId: $who) {
    id sessionId messageId clientId thumbs stars comment
  }
}"""
APP_FEEDBACK = """query($before: ID) {
  feedback(first: 2, before: $before) { id messageId clientId stars thumbs }
}"""


async def answered(gql: GraphQLClient, text: str, wallet: str | None = None) -> dict[str, Any]:
    """A new session with one answered turn: its messages (user, assistant)."""
    session_id = new_id()
    await gql.data(SEND, s=session_id, c=text, k=wallet)
    read = await first_read(
        lambda: gql.data(READ, s=session_id),
        lambda read: not read["session"]["isProcessing"],
        "the answer",
    )
    return {"id": session_id, **read["session"]}


def answer_id(session: dict[str, Any]) -> str:
    return str(next(m["id"] for m in session["messages"]["nodes"] if m["role"] == "ASSISTANT"))


async def test_one_rating_per_message_per_client_changeable(
    app: Starlette, gql: GraphQLClient, alpha_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    wallet = new_wallet()
    session = await answered(alpha, "hello", wallet)
    message = answer_id(session)
    first = (await alpha.data(RATE, m=message, t="UP"))["rateMessage"]
    assert first["clientId"] == wallet  # the session's wallet, by default
    assert (first["thumbs"], first["stars"], first["sessionId"]) == ("UP", None, session["id"])
    changed = (await alpha.data(RATE, m=message, s=4, c="  clear answer "))["rateMessage"]
    assert changed["id"] == first["id"]  # the same rating, changed
    await alpha.data(RATE, m=message, t="DOWN", who="reviewer-7")
    listed = (await alpha.data(READ, s=session["id"]))["session"]["feedback"]
    assert listed == [
        {"messageId": message, "clientId": wallet, "thumbs": None, "stars": 4,
         "comment": "clear answer"},
        {"messageId": message, "clientId": "reviewer-7", "thumbs": "DOWN", "stars": None,
         "comment": ""},
    ]  # fmt: skip

    runtime = app.state.runtime
    log = await runtime.events.read_log(UUID(session["id"]), 0)
    told = [e.data["feedback"] for e in log.events if e.type == "feedback_changed"]
    assert [(f["client_id"], f["thumbs"], f["stars"]) for f in told] == [
        (wallet, "up", None),
        (wallet, None, 4),
        ("reviewer-7", "down", None),
    ]
    record = await runtime.store.get_session(UUID(session["id"]))
    exported = await export_session(runtime.store, record)
    assert [(f["client_id"], f["stars"]) for f in exported["feedback"]] == [
        (wallet, 4),
        ("reviewer-7", None),
    ]


async def test_the_apps_feedback_pages_newest_first_and_stays_in_its_app(
    gql: GraphQLClient, alpha_key: str, beta_key: str, client: httpx.AsyncClient
) -> None:
    alpha, beta = gql.with_key(alpha_key), gql.with_key(beta_key)
    sessions = [await answered(alpha, f"question {n}") for n in range(3)]
    for n, session in enumerate(sessions):
        await alpha.data(RATE, m=answer_id(session), s=n + 1, who="eval")
    page = (await alpha.data(APP_FEEDBACK))["feedback"]
    assert [f["stars"] for f in page] == [3, 2]
    rest = (await alpha.data(APP_FEEDBACK, before=page[-1]["id"]))["feedback"]
    assert [f["stars"] for f in rest][:1] == [1]
    assert {f["messageId"] for f in page + rest} >= {answer_id(s) for s in sessions}
    # Another app: cannot rate alpha's message, and sees none of alpha's ratings.
    error = await beta.error(RATE, m=answer_id(sessions[0]), t="UP")
    assert error["extensions"]["code"] == "NOT_FOUND", error
    seen_by_beta = {f["messageId"] for f in (await beta.data(APP_FEEDBACK))["feedback"]}
    assert not seen_by_beta & {answer_id(s) for s in sessions}
    scraped = (await client.get("/metrics")).text
    assert 'confab_feedback_total{kind="stars",value="3"}' in scraped


async def test_bad_ratings_are_refused_and_nothing_is_written(
    gql: GraphQLClient, alpha_key: str
) -> None:
    alpha = gql.with_key(alpha_key)
    session = await answered(alpha, "hello")
    message = answer_id(session)
    question = next(m["id"] for m in session["messages"]["nodes"] if m["role"] == "USER")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"m": message, "s": 6}, "INVALID_INPUT", "stars"),
        ({"m": message, "s": 0}, "INVALID_INPUT", "stars"),
        ({"m": message, "t": "UP", "s": 3}, "INVALID_INPUT", "exactly one"),
        ({"m": message}, "INVALID_INPUT", "exactly one"),
        ({"m": message, "t": "UP", "c": "x" * 2_001}, "INVALID_INPUT", "comment"),
        ({"m": message, "t": "UP", "who": "has spaces"}, "INVALID_INPUT", "clientId"),
        ({"m": question, "t": "UP"}, "INVALID_INPUT", "assistant"),
        ({"m": new_id(), "t": "UP"}, "NOT_FOUND", "not found"),
        ({"m": "nope", "t": "UP"}, "INVALID_INPUT", "messageId"),
    ]
    for variables, code, words in cases:
        error = await alpha.error(RATE, **variables)
        assert error["extensions"]["code"] == code, (variables, error)
        assert words in error["message"], (variables, error)
    error = await alpha.error(APP_FEEDBACK, before="x1")
    assert error["extensions"]["code"] == "INVALID_INPUT", error
    assert (await alpha.data(READ, s=session["id"]))["session"]["feedback"] == []
