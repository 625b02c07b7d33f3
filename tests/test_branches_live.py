"""Branches across real server processes (two replicas, PostgreSQL and Redis): a
second tab, subscribed over WebSocket on the other replica, follows the first tab's
edit and switches and refetches exactly the active path; two edits of one message
sent to both replicas at once: each is made or refused as CONFLICT (the other
replica's answer had begun), never an answer on the wrong path."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import new_id
from tests.live import Collector, post, post_raw, wait_for_subscribers, ws_session
from tests.processes import ServerProcess
from tests.waiting import first_read

SEND = "mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id } }"
PATH = """query($s: ID!) {
  session(id: $s) {
    isProcessing
    messages(last: 50) { nodes { id content parentId } }
  }
}"""
EDIT = "mutation($id: ID!, $c: String!) { editMessage(id: $id, content: $c) { id content } }"
SWITCH = "mutation($m: ID!) { switchBranch(messageId: $m) { id } }"
BRANCH_EVENTS = """subscription($s: ID!) {
  sessionEvents(sessionId: $s, types: ["message_edited", "branch_switched"]) {
    type cursor
    payload {
      ... on MessageEditedPayload { message { id content parentId } replacesId }
      ... on BranchSwitchedPayload { threadId messageId leafId }
    }
  }
}"""


async def idle_path(server: ServerProcess, session_id: str) -> list[dict[str, Any]]:
    read = await first_read(
        lambda: post(server, PATH, s=session_id),
        lambda read: not read["session"]["isProcessing"],
        "the answer",
    )
    nodes: list[dict[str, Any]] = read["session"]["messages"]["nodes"]
    return nodes


async def test_a_second_tab_follows_edits_and_switches(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    tab_a, tab_b = replicas
    session_id = new_id()
    await post(tab_a, SEND, s=session_id, c="plan a trip")
    first = await idle_path(tab_a, session_id)
    async with ws_session(tab_b) as ws:
        events = Collector(ws, BRANCH_EVENTS, s=session_id)
        await wait_for_subscribers(tab_b, 1)
        edited = (await post(tab_a, EDIT, id=first[0]["id"], c="plan a cheaper trip"))[
            "editMessage"
        ]
        edited_path = await idle_path(tab_a, session_id)
        await post(tab_a, SWITCH, m=first[0]["id"])
        received = [r["sessionEvents"] for r in await events.wait_for(2)]
        # Tab B refetches on the switch: the path tab A now shows, nothing more or less.
        seen_by_b = (await post(tab_b, PATH, s=session_id))["session"]["messages"]["nodes"]
        seen_by_a = (await post(tab_a, PATH, s=session_id))["session"]["messages"]["nodes"]
        await events.stop()
    assert [e["type"] for e in received] == ["message_edited", "branch_switched"]
    assert received[0]["payload"] == {
        "message": {"id": edited["id"], "content": "plan a cheaper trip", "parentId": None},
        "replacesId": first[0]["id"],
    }
    assert received[1]["payload"] == {
        "threadId": session_id,
        "messageId": first[0]["id"],
        "leafId": first[-1]["id"],
    }
    assert [m["id"] for m in seen_by_b] == [m["id"] for m in seen_by_a] == [m["id"] for m in first]
    assert len({m["id"] for m in seen_by_b}) == len(seen_by_b)
    assert [m["content"] for m in edited_path] == [
        "plan a cheaper trip",
        "You said: plan a cheaper trip",
    ]


async def test_two_edits_at_once_on_two_replicas_keep_one_coherent_path(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    one, other = replicas
    session_id = new_id()
    await post(one, SEND, s=session_id, c="hello")
    [question, _] = await idle_path(one, session_id)
    outcomes = await asyncio.gather(
        post_raw(one, EDIT, id=question["id"], c="hello from one"),
        post_raw(other, EDIT, id=question["id"], c="hello from two"),
    )
    made = {o["data"]["editMessage"]["id"] for o in outcomes if o.get("data")}
    refused = [o["errors"][0]["extensions"]["code"] for o in outcomes if o.get("errors")]
    assert made, outcomes
    assert set(refused) <= {"CONFLICT"}  # checked with the thread's row locked
    path = await idle_path(one, session_id)
    versions = (
        await post(one, "query($id: ID!) { messageVersions(id: $id) { ids } }", id=path[0]["id"])
    )["messageVersions"]["ids"]
    assert set(versions) == {question["id"], *made}  # every version made is kept
    assert path[0]["id"] in made  # the last one made is active, and answered
    assert path[-1]["content"] == f"You said: {path[0]['content']}"
    assert [m["id"] for m in await idle_path(other, session_id)] == [m["id"] for m in path]
