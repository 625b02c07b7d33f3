"""Interrupt behind a load balancer: the turn runs on replica A, the stop lands on
replica B. B asks A through Redis; A cancels (keeping the partial answer) and B
answers once the session stopped, so its snapshot already shows it."""

from __future__ import annotations

import httpx

from tests.conftest import new_id
from tests.processes import ServerProcess
from tests.rest_client import (
    INTERRUPTION,
    chat,
    graphql,
    headers,
    ok,
    senders,
    state,
    until_idle,
    until_streaming,
)

LONG_TEXT = " ".join(f"word{n}" for n in range(200))


async def test_an_interrupt_on_another_replica_stops_the_turn(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = replicas
    session_id = new_id()
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=15) as on_a,
        httpx.AsyncClient(base_url=second.url, timeout=15) as on_b,
    ):
        ok(await chat(on_a, session_id, f"/slow 30 {LONG_TEXT}"))
        ok(await chat(on_a, session_id, "never answered"))
        await until_streaming(on_a, session_id)

        stopped = ok(await on_b.post("/api/interrupt", headers=headers(session_id)))
        assert stopped["is_processing"] is False
        for http in (on_a, on_b):
            after = await state(http, session_id)
            assert after["is_processing"] is False
            # the partial answer is kept; the queued message is never answered
            assert senders(after) == ["user", "user", "agent"]
            partial = after["messages"][2]["content"]
            assert partial.startswith("You said: word0")
            assert len(partial) < len(f"You said: {LONG_TEXT}")
        events = ok(await on_b.get("/api/events", headers=headers(session_id)))
        assert events.count(INTERRUPTION) == 1, events
        # the session goes on normally afterwards, from either replica
        ok(await chat(on_b, session_id, "and now?"))
        answered, _ = await until_idle(on_a, session_id)
        assert answered["messages"][-1]["content"] == "You said: and now?"


async def test_the_interrupt_mutation_crosses_replicas_too(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = replicas
    session_id = new_id()
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=15) as on_a,
        httpx.AsyncClient(base_url=second.url, timeout=15) as on_b,
    ):
        ok(await chat(on_a, session_id, f"/slow 30 {LONG_TEXT}"))
        await until_streaming(on_a, session_id)
        stopped = await graphql(
            on_b, "mutation($s: ID!) { interrupt(sessionId: $s) { isProcessing } }", s=session_id
        )
        assert stopped["interrupt"]["isProcessing"] is False
        assert (await state(on_a, session_id))["is_processing"] is False


async def test_interrupting_an_idle_session_elsewhere_is_a_no_op(
    replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = replicas
    session_id = new_id()
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=15) as on_a,
        httpx.AsyncClient(base_url=second.url, timeout=15) as on_b,
    ):
        ok(await chat(on_a, session_id, "quick one"))
        await until_idle(on_a, session_id)
        snapshot = ok(await on_b.post("/api/interrupt", headers=headers(session_id)))
        assert snapshot["is_processing"] is False
        assert [m["content"] for m in snapshot["messages"]] == ["quick one", "You said: quick one"]
        assert INTERRUPTION not in ok(await on_b.get("/api/events", headers=headers(session_id)))
