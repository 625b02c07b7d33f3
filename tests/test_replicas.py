"""Two server processes on one PostgreSQL and one Redis behave as one service."""

from __future__ import annotations

import asyncio

from tests.conftest import new_id, new_wallet
from tests.live import post
from tests.processes import ServerProcess

READ = "query($id: ID!) { session(id: $id) { title isArchived isProcessing metadata } }"


async def test_a_write_on_one_replica_is_read_at_once_on_the_other(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    session_id = new_id()
    await post(a, "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    for n in range(15):
        writer, reader = (a, b) if n % 2 == 0 else (b, a)
        await post(reader, READ, id=session_id)  # the reader has it cached
        await post(
            writer,
            "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }",
            id=session_id,
            t=f"title {n}",
        )
        read = await post(reader, READ, id=session_id)
        assert read["session"]["title"] == f"title {n}", f"stale read on round {n}"


async def test_rest_and_graphql_across_replicas(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    import httpx

    a, b = replicas
    session_id, wallet = new_id(), new_wallet()
    headers = {"X-Session-Id": session_id}
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{a.url}/api/sessions", headers=headers, json={"public_key": wallet})
        await post(b, READ, id=session_id)
        await http.post(f"{a.url}/api/sessions/{session_id}/archive")
        assert (await post(b, READ, id=session_id))["session"]["isArchived"] is True
        listed = (await http.get(f"{b.url}/api/sessions", params={"public_key": wallet})).json()
        assert listed == [{"session_id": session_id, "title": "New chat", "is_archived": True}]


async def test_a_system_event_from_one_replica_reaches_snapshots_on_the_other(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    import httpx

    a, b = replicas
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    notice = (
        "mutation($id: ID!, $m: String!) { postSystemNotice(sessionId: $id, message: $m) { id } }"
    )
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{a.url}/api/sessions", headers=headers)
        for n in range(3):
            # B has the session cached, with nothing unread.
            assert (await http.get(f"{b.url}/api/state", headers=headers)).json()[
                "system_events"
            ] == []
            await post(a, notice, id=session_id, m=f"notice {n}")
            snapshot = (await http.get(f"{b.url}/api/state", headers=headers)).json()
            assert snapshot["system_events"] == [{"SystemNotice": f"notice {n}"}], n


async def test_is_processing_reads_the_same_on_every_replica(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = replicas
    session_id = new_id()
    await post(a, "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    await post(b, READ, id=session_id)  # cached on B while idle
    await post(
        a,
        'mutation($s: ID!) { sendMessage(sessionId: $s, content: "/slow 1 long answer") { id } }',
        s=session_id,
    )
    on_a = (await post(a, READ, id=session_id))["session"]["isProcessing"]
    on_b = (await post(b, READ, id=session_id))["session"]["isProcessing"]
    assert on_a is on_b is True
    for _ in range(60):
        await asyncio.sleep(0.1)
        if not (await post(a, READ, id=session_id))["session"]["isProcessing"]:
            break
    assert (await post(b, READ, id=session_id))["session"]["isProcessing"] is False


async def test_sse_subscribers_on_one_replica_see_events_caused_on_another(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    import json

    import httpx

    a, b = replicas
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", f"{b.url}/api/updates", headers=headers) as stream,
    ):
        lines = stream.aiter_lines()
        assert await anext(lines) == ": connected"
        await http.post(f"{a.url}/api/sessions", headers=headers)
        await http.patch(f"{a.url}/api/sessions/{session_id}", json={"title": "From A"})
        async with asyncio.timeout(10):
            async for line in lines:
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    break
    assert event == {"type": "title_changed", "session_id": session_id, "new_title": "From A"}


async def test_a_message_written_on_one_replica_is_in_the_others_next_snapshot(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    """A keeps the session's recent messages beside its cached copy; a message that
    B stores moves the session's version, so A's very next read is not served from
    the old window."""
    import httpx

    a, b = replicas
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    recent = "query($id: ID!) { session(id: $id) { messages(last: 20) { nodes { content } } } }"
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(f"{a.url}/api/sessions", headers=headers)
        for n in range(6):
            writer, reader = (b, a) if n % 2 == 0 else (a, b)
            await http.get(f"{reader.url}/api/state", headers=headers)  # cached, with its tail
            await post(reader, recent, id=session_id)
            sent = await http.post(
                f"{writer.url}/api/system", headers=headers, params={"message": f"note {n}"}
            )
            assert sent.status_code == 200, sent.text
            expected = [f"note {k}" for k in range(n + 1)]
            state = (await http.get(f"{reader.url}/api/state", headers=headers)).json()
            assert [m["content"] for m in state["messages"]] == expected, f"stale on round {n}"
            read = await post(reader, recent, id=session_id)
            assert [m["content"] for m in read["session"]["messages"]["nodes"]] == expected
