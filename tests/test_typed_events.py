"""Typed live events: `SessionEvent.payload`, a union with one member per kind of
event, beside the untyped `data`. A real server process (PostgreSQL, Redis), the
`gql` client over graphql-transport-ws, a real conversation driving every kind."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import new_id
from tests.live import LEGACY_WS, Collector, post, wait_for_subscribers, ws_session
from tests.processes import ServerProcess

PAYLOAD = """
payload {
  __typename
  ... on MessageAddedPayload {
    message {
      id sessionId threadId seq role content toolCalls toolResults isInterrupted createdAt
    }
  }
  ... on MessageDeltaPayload { messageId threadId delta }
  ... on TitleChangedPayload { newTitle source }
  ... on ToolUpdatePayload { id callId toolName status arguments progress }
  ... on ToolCompletePayload { id callId toolName result error }
  ... on SystemNoticePayload { text kind eventId }
  ... on ProcessingChangedPayload { isProcessing }
  ... on SessionUpdatedPayload { changes }
  ... on SessionDeletedPayload { sessionId }
  ... on FeedbackChangedPayload {
    feedback { id sessionId messageId clientId thumbs stars comment createdAt updatedAt }
  }
  ... on ResyncRequiredPayload { code text after }
  ... on CustomEventPayload { type data }
}"""
TYPED = (
    "subscription($id: ID!, $types: [String!], $after: String) {\n"
    "  sessionEvents(sessionId: $id, types: $types, after: $after) {\n"
    f"    cursor type sessionId data {PAYLOAD}\n"
    "  }\n"
    "}"
)
UNTYPED = """
subscription($id: ID!, $types: [String!], $after: String) {
  sessionEvents(sessionId: $id, types: $types, after: $after) { cursor type sessionId app data }
}"""
CREATE = "mutation($id: ID!) { createSession(id: $id) { id } }"
SEND = "mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id } }"
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }"
NOTICE = "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"
METADATA = """
mutation($id: ID!) { updateMetadata(sessionId: $id, metadata: {plan: "pro", seats: 3}) { id } }"""
DELETE = "mutation($id: ID!) { deleteSession(id: $id) { id } }"
RATE = """mutation($m: ID!) {
  rateMessage(messageId: $m, stars: 4, comment: "to the point", clientId: "ann") { id }
}"""
MESSAGES = """
query($id: ID!) {
  session(id: $id) {
    messages(first: 50) {
      nodes {
        id sessionId threadId seq role content toolCalls toolResults isInterrupted createdAt
      }
    }
  }
}"""
CALCULATOR = '/tool calculator {"expression": "1+2"}'


def expected_payload(event: dict[str, Any]) -> dict[str, Any]:
    """What `payload` must say, computed from what `data` says (docs/events.md)."""
    kind, data = event["type"], event["data"]
    if kind == "message_added":
        m = data["message"]
        return {
            "__typename": "MessageAddedPayload",
            "message": {
                "id": m["id"],
                "sessionId": event["sessionId"],
                "threadId": m["thread_id"],
                "seq": m["seq"],
                "role": m["role"].upper(),
                "content": m["content"],
                "toolCalls": m["tool_calls"],
                "toolResults": m["tool_results"],
                "isInterrupted": m["is_interrupted"],
                "createdAt": m["created_at"],
            },
        }
    if kind == "message_delta":
        return {
            "__typename": "MessageDeltaPayload",
            "messageId": data["message_id"],
            "threadId": data["thread_id"],
            "delta": data["delta"],
        }
    if kind == "title_changed":
        return {
            "__typename": "TitleChangedPayload",
            "newTitle": data["new_title"],
            "source": data["source"].upper(),
        }
    if kind == "tool_update":
        result = data["result"]
        return {
            "__typename": "ToolUpdatePayload",
            "id": data["id"],
            "callId": data["call_id"],
            "toolName": data["tool_name"],
            "status": result["status"],
            "arguments": result.get("arguments"),
            "progress": result.get("progress"),
        }
    if kind == "tool_complete":
        result = data["result"]
        failed = isinstance(result, dict) and set(result) == {"error"}
        return {
            "__typename": "ToolCompletePayload",
            "id": data["id"],
            "callId": data["call_id"],
            "toolName": data["tool_name"],
            "result": None if failed else result,
            "error": result["error"] if failed else None,
        }
    if kind == "system_notice":
        return {
            "__typename": "SystemNoticePayload",
            "text": data["message"],
            "kind": data.get("kind", "notice"),
            "eventId": str(data["event_id"]) if "event_id" in data else None,
        }
    if kind == "processing_changed":
        return {"__typename": "ProcessingChangedPayload", "isProcessing": data["is_processing"]}
    if kind == "session_updated":
        return {"__typename": "SessionUpdatedPayload", "changes": data["changes"]}
    if kind == "session_deleted":
        return {"__typename": "SessionDeletedPayload", "sessionId": event["sessionId"]}
    if kind == "feedback_changed":
        f = data["feedback"]
        return {
            "__typename": "FeedbackChangedPayload",
            "feedback": {
                "id": str(f["id"]),
                "sessionId": event["sessionId"],
                "messageId": f["message_id"],
                "clientId": f["client_id"],
                "thumbs": None if f["thumbs"] is None else f["thumbs"].upper(),
                "stars": f["stars"],
                "comment": f["comment"],
                "createdAt": f["created_at"],
                "updatedAt": f["updated_at"],
            },
        }
    if kind == "resync_required":
        return {
            "__typename": "ResyncRequiredPayload",
            "code": data["code"],
            "text": data["message"],
            "after": data["after"],
        }
    return {"__typename": "CustomEventPayload", "type": kind, "data": data}


async def until(collector: Collector, kind: str, **data: Any) -> list[dict[str, Any]]:
    """Everything received up to the first event of `kind` whose data has `data`."""
    seen = 0
    while True:
        results = await collector.wait_for(seen + 1, timeout=20)
        seen = len(results)
        event = results[-1]["sessionEvents"]
        if event["type"] == kind and all(event["data"].get(k) == v for k, v in data.items()):
            return [r["sessionEvents"] for r in results]


async def post_system(server: ServerProcess, session_id: str, message: str) -> None:
    """REST `POST /api/system`: a system message, and a custom event if it is typed JSON."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{server.url}/api/system",
            json={"message": message},
            headers={"X-Session-Id": session_id},
        )
    assert response.status_code == 200, response.text


async def rendered(server: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        status = (await http.get(f"{server.url}/readyz")).json()
    return int(status["events"]["rendered"])


async def test_every_kind_of_event_arrives_typed(server: ServerProcess) -> None:
    session_id = new_id()  # the first message creates the session
    async with ws_session(server) as ws:
        events = Collector(ws, TYPED, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, SEND, s=session_id, c=CALCULATOR)
        turn = await until(events, "processing_changed", is_processing=False)
        stored = (await post(server, MESSAGES, id=session_id))["session"]["messages"]["nodes"]
        await post(server, RENAME, id=session_id, t="Arithmetic")
        notice = (await post(server, NOTICE, id=session_id, m="Maintenance at noon"))[
            "postSystemNotice"
        ]
        await post(server, METADATA, id=session_id)
        await post(server, RATE, m=stored[-1]["id"])
        custom = {"type": "my_event", "payload": {"to": "0xabc", "value": 7}, "note": "hi"}
        await post_system(server, session_id, json.dumps(custom))
        await post(server, DELETE, id=session_id)
        received = await until(events, "session_deleted")
        await events.stop()

    for event in received:
        assert event["payload"] == expected_payload(event), event
        assert event["sessionId"] == session_id
    typed = {event["payload"]["__typename"] for event in received}
    assert typed == {
        "MessageAddedPayload",
        "MessageDeltaPayload",
        "TitleChangedPayload",
        "ToolUpdatePayload",
        "ToolCompletePayload",
        "SystemNoticePayload",
        "ProcessingChangedPayload",
        "SessionUpdatedPayload",
        "SessionDeletedPayload",
        "FeedbackChangedPayload",
        "CustomEventPayload",
    }

    def payloads(kind: str, among: list[dict[str, Any]] = received) -> list[dict[str, Any]]:
        return [e["payload"] for e in among if e["type"] == kind]

    # The turn: the messages are the stored ones, exactly as a query shows them.
    assert [p["message"] for p in payloads("message_added", turn)] == stored
    assert [m["role"] for m in stored] == ["USER", "ASSISTANT", "TOOL", "ASSISTANT"]
    assert stored[0]["content"] == CALCULATOR
    updates, [complete] = payloads("tool_update"), payloads("tool_complete")
    assert updates[0]["toolName"] == "calculator"
    assert updates[0]["status"] == "running"
    assert updates[0]["arguments"] == {"expression": "1+2"}
    assert complete["result"] == {"expression": "1+2", "value": 3}
    assert complete["error"] is None
    assert {u["id"] for u in updates} == {complete["id"]}
    assert stored[1]["toolCalls"][0]["call_id"] == complete["callId"]
    deltas = payloads("message_delta", turn)
    assert deltas
    assert {d["messageId"] for d in deltas} == {stored[3]["id"]}
    assert "".join(d["delta"] for d in deltas) == stored[3]["content"]
    assert [p["isProcessing"] for p in payloads("processing_changed")] == [True, False]
    generated, renamed = payloads("title_changed")
    assert generated["source"] == "GENERATED"
    assert renamed == {
        "__typename": "TitleChangedPayload",
        "newTitle": "Arithmetic",
        "source": "USER",
    }
    # After the turn: the notice names its stored event; the rest as posted.
    assert payloads("system_notice") == [
        {
            "__typename": "SystemNoticePayload",
            "text": "Maintenance at noon",
            "kind": "notice",
            "eventId": notice["id"],
        }
    ]
    assert payloads("session_updated") == [
        {
            "__typename": "SessionUpdatedPayload",
            "changes": {"metadata": {"plan": "pro", "seats": 3}},
        }
    ]
    assert payloads("my_event") == [
        {
            "__typename": "CustomEventPayload",
            "type": "my_event",
            "data": {"payload": {"to": "0xabc", "value": 7}, "note": "hi"},
        }
    ]
    system_message = payloads("message_added")[-1]["message"]
    assert (system_message["role"], system_message["content"]) == ("SYSTEM", json.dumps(custom))
    assert payloads("session_deleted") == [
        {"__typename": "SessionDeletedPayload", "sessionId": session_id}
    ]


async def test_a_documented_type_posted_with_other_data_is_a_custom_event(
    server: ServerProcess,
) -> None:
    """Clients may post `title_changed` themselves: data without its fields is not a
    TitleChangedPayload (whose fields are non-null) but a CustomEventPayload."""
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        events = Collector(ws, TYPED, id=session_id, types=["title_changed", "system_notice"])
        await wait_for_subscribers(server, 1)
        await post_system(server, session_id, json.dumps({"type": "title_changed", "x": 1}))
        await post_system(
            server,
            session_id,
            json.dumps({"type": "title_changed", "new_title": "Posted", "source": "user"}),
        )
        await post_system(server, session_id, json.dumps({"type": "system_notice", "message": 5}))
        received = [r["sessionEvents"] for r in await events.wait_for(3)]
        await events.stop()
    assert [e["payload"] for e in received] == [
        {"__typename": "CustomEventPayload", "type": "title_changed", "data": {"x": 1}},
        {"__typename": "TitleChangedPayload", "newTitle": "Posted", "source": "USER"},
        {"__typename": "CustomEventPayload", "type": "system_notice", "data": {"message": 5}},
    ]


async def test_resume_after_a_cursor_with_the_union_selected(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        first = Collector(ws, TYPED, id=session_id)
        await wait_for_subscribers(server, 1)
        await post(server, NOTICE, id=session_id, m="m0")
        [seen] = await first.wait_for(1)
        await first.stop()
    cursor = seen["sessionEvents"]["cursor"]
    for n in range(1, 4):  # published while nobody listens
        await post(server, NOTICE, id=session_id, m=f"m{n}")

    async with ws_session(server) as ws:
        resumed = Collector(ws, TYPED, id=session_id, after=cursor)
        replayed = await resumed.wait_for(3)
        await post(server, NOTICE, id=session_id, m="m4")
        everything = [r["sessionEvents"] for r in await resumed.wait_for(4)]
        await resumed.stop()
    assert replayed == [{"sessionEvents": e} for e in everything[:3]]
    assert [e["payload"]["text"] for e in everything] == ["m1", "m2", "m3", "m4"]
    assert len(resumed.results) == 4  # nothing twice
    for event in everything:
        assert event["payload"] == expected_payload(event)
        assert event["payload"]["eventId"] is not None
    cursors = [int(e["cursor"]) for e in everything]
    assert cursors == sorted(cursors)
    assert cursors[0] > int(cursor)


async def test_resync_required_arrives_typed(server: ServerProcess) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        events = Collector(ws, TYPED, id=session_id, after="1")  # older than any log
        [resync] = await events.wait_for(1)
        await post(server, NOTICE, id=session_id, m="after the resync")
        _, following = await events.wait_for(2)
        await events.stop()
    event = resync["sessionEvents"]
    assert event["type"] == "resync_required"
    assert event["payload"] == {
        "__typename": "ResyncRequiredPayload",
        "code": "CURSOR_EXPIRED",
        "text": event["data"]["message"],
        "after": "1",
    }
    assert following["sessionEvents"]["payload"]["text"] == "after the resync"
    assert int(following["sessionEvents"]["cursor"]) > int(event["cursor"])


async def test_data_is_unchanged_for_a_client_that_does_not_select_the_union(
    server: ServerProcess,
) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as old, ws_session(server) as new:
        untyped = Collector(old, UNTYPED, id=session_id)
        typed = Collector(new, TYPED, id=session_id)
        await wait_for_subscribers(server, 2)
        await post(server, RENAME, id=session_id, t="Plans")
        await post(server, NOTICE, id=session_id, m="hello")
        await post(server, METADATA, id=session_id)
        await post_system(server, session_id, json.dumps({"type": "my_event", "n": 1}))
        before = [r["sessionEvents"] for r in await untyped.wait_for(5)]
        after = [r["sessionEvents"] for r in await typed.wait_for(5)]
        await untyped.stop()
        await typed.stop()
    assert [set(e) for e in before] == [{"cursor", "type", "sessionId", "app", "data"}] * 5
    assert [e["type"] for e in before] == [
        "title_changed",
        "system_notice",
        "session_updated",
        "message_added",
        "my_event",
    ]
    assert before[0]["data"] == {"new_title": "Plans", "source": "user"}
    assert before[1]["data"]["message"] == "hello"
    assert before[2]["data"] == {"changes": {"metadata": {"plan": "pro", "seats": 3}}}
    assert before[4]["data"] == {"n": 1}
    for old_event, new_event in zip(before, after, strict=True):
        assert {k: new_event[k] for k in ("cursor", "type", "data")} == {
            k: old_event[k] for k in ("cursor", "type", "data")
        }


async def test_each_event_is_rendered_once_for_subscribers_of_the_same_operation(
    server: ServerProcess,
) -> None:
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as a, ws_session(server) as b, ws_session(server) as c:
        same = [Collector(ws, TYPED, id=session_id) for ws in (a, b, c)]
        await wait_for_subscribers(server, 3)
        before = await rendered(server)
        await post(server, NOTICE, id=session_id, m="one")
        await post(server, RENAME, id=session_id, t="Two")
        await post_system(server, session_id, json.dumps({"type": "my_event", "n": 3}))
        results = [await collector.wait_for(4) for collector in same]
        after = await rendered(server)
        for collector in same:
            await collector.stop()
    # Four events (the system message and its custom event), one operation: four renderings.
    assert after - before == 4
    assert results[0] == results[1] == results[2]
    assert [r["sessionEvents"]["payload"]["__typename"] for r in results[0]] == [
        "SystemNoticePayload",
        "TitleChangedPayload",
        "MessageAddedPayload",
        "CustomEventPayload",
    ]


async def test_both_protocols_receive_the_same_typed_result(server: ServerProcess) -> None:
    """graphql-ws has no sink: Strawberry executes its results, which must match."""
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as modern, ws_session(server, protocol=LEGACY_WS) as legacy:
        collectors = [Collector(ws, TYPED, id=session_id) for ws in (modern, legacy)]
        await wait_for_subscribers(server, 2)
        await post(server, NOTICE, id=session_id, m="hello")
        await post_system(server, session_id, json.dumps({"type": "my_event", "n": 2}))
        received = [await collector.wait_for(3) for collector in collectors]
        for collector in collectors:
            await collector.stop()
    assert received[0] == received[1]
    for result in received[0]:
        assert result["sessionEvents"]["payload"] == expected_payload(result["sessionEvents"])


async def test_title_changed_subscribers_survive_a_posted_title_changed_without_a_title(
    server: ServerProcess,
) -> None:
    """A client-posted `title_changed` without `new_title` used to end every
    titleChanged subscription of the session with INTERNAL."""
    session_id = new_id()
    await post(server, CREATE, id=session_id)
    async with ws_session(server) as ws:
        titles = Collector(
            ws,
            "subscription($id: ID!) { titleChanged(sessionId: $id) { newTitle } }",
            id=session_id,
        )
        await wait_for_subscribers(server, 1)
        await post_system(server, session_id, json.dumps({"type": "title_changed", "x": 1}))
        await post(server, RENAME, id=session_id, t="Still here")
        received = await titles.wait_for(1)
        await titles.stop()
    # Left out (it is no title change), and the subscription lives on.
    assert received == titles.results == [{"titleChanged": {"newTitle": "Still here"}}]
    assert titles.error is None
