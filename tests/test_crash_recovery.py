"""A process dying mid-turn (SIGKILL): every acknowledged message is still answered,
in order, by the restarted process or by another replica; the streamed text of the
killed turn is kept; a turn whose tool had started is not run again. And one
session's turns never overlap across replicas."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from tests.conftest import new_id
from tests.live import cli, post
from tests.processes import ServerProcess

BOUND = 3.0  # CONFAB_RECOVERY_SECONDS in these tests
DEADLINE = 90.0  # generous: a loaded 2-core machine runs 20 servers' worth of turns
SESSIONS = 20
SEND = """
mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id } }"""
STATE = """
query($s: ID!) {
  session(id: $s) {
    isProcessing
    messages(first: 50) { nodes { id role content isInterrupted } }
    systemEvents { kind payload }
  }
}"""
LONG_TEXT = " ".join(f"word{i}" for i in range(60))


def questions(index: int) -> list[str]:
    """A slow first message (killed mid-stream) and two that wait behind it. Slow
    enough not to finish before the kill: on a machine with two CPU hogs beside the
    suite, checkpointing all 20 sessions once took 8 s, when an 8 s answer was
    complete. (The survivor answers it again in full, so longer costs time.)"""
    return [f"/slow 16 {index} {LONG_TEXT}", f"second of {index}", f"third of {index}"]


def answer_to(question: str) -> str:
    text = question.split(" ", 2)[2] if question.startswith("/slow") else question
    return f"You said: {text}"


async def session_state(server: ServerProcess, session_id: str, key: str | None = None) -> Any:
    return (await post(server, STATE, key, s=session_id))["session"]


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# -- the stored turns, read as an operator would ------------------------------------


def sqlite_partials(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT partial_text FROM turns WHERE status = 'running'").fetchall()
    return [row[0] for row in rows]


async def postgres_partials(url: str, session_ids: list[str]) -> list[str]:
    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await connection.fetch(
            "SELECT partial_text FROM turns WHERE status = 'running' "
            "AND session_id = ANY($1::uuid[])",
            session_ids,
        )
    finally:
        await connection.close()
    return [row["partial_text"] for row in rows]


# -- the story ---------------------------------------------------------------------


async def start_conversations(server: ServerProcess, session_ids: list[str]) -> None:
    for index, session_id in enumerate(session_ids):
        for question in questions(index):
            await post(server, SEND, s=session_id, c=question)


async def assert_all_answered(server: ServerProcess, session_ids: list[str]) -> None:
    """Every question answered in order; the killed turn's text kept as interrupted."""

    async def done() -> bool:
        for session_id in session_ids:
            state = await session_state(server, session_id)
            answers = [
                m
                for m in state["messages"]["nodes"]
                if m["role"] == "ASSISTANT" and not m["isInterrupted"]
            ]
            if state["isProcessing"] or len(answers) < 3:
                return False
        return True

    await until(done, "every session to be answered")
    answered = 0
    for index, session_id in enumerate(session_ids):
        nodes = (await session_state(server, session_id))["messages"]["nodes"]
        asked = questions(index)
        assert [m["content"] for m in nodes if m["role"] == "USER"] == asked
        answers = [
            m["content"] for m in nodes if m["role"] == "ASSISTANT" and not m["isInterrupted"]
        ]
        assert answers == [answer_to(q) for q in asked], answers
        answered += len(answers)
        partial = [m["content"] for m in nodes if m["isInterrupted"]]
        assert len(partial) == 1, nodes
        assert partial[0], nodes
        assert answer_to(asked[0]).startswith(partial[0]), partial
    assert answered == 3 * len(session_ids)


async def test_a_restarted_process_answers_every_waiting_message(tmp_path: Path) -> None:
    database = tmp_path / "crash.sqlite3"
    env = {"DATABASE_URL": f"sqlite://{database}", "CONFAB_RECOVERY_SECONDS": str(BOUND)}
    first = ServerProcess(env, tmp_path / "first.log")
    first.wait_ready()
    session_ids = [new_id() for _ in range(SESSIONS)]
    try:
        await start_conversations(first, session_ids)

        async def all_checkpointed() -> bool:
            partials = sqlite_partials(database)
            return len(partials) == SESSIONS and all(partials)

        await until(all_checkpointed, "every running turn to checkpoint its text")
    finally:
        first.kill()
    second = ServerProcess(env, tmp_path / "second.log")
    second.wait_ready()
    try:
        await assert_all_answered(second, session_ids)
    finally:
        second.stop()


async def test_a_surviving_replica_answers_the_killed_replicas_messages(
    live_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**live_env, "CONFAB_RECOVERY_SECONDS": str(BOUND)}
    a, b = ServerProcess(env, tmp_path / "a.log"), ServerProcess(env, tmp_path / "b.log")
    a.wait_ready()
    b.wait_ready()
    session_ids = [new_id() for _ in range(SESSIONS)]
    try:
        await start_conversations(a, session_ids)

        async def all_checkpointed() -> bool:
            partials = await postgres_partials(env["DATABASE_URL"], session_ids)
            return len(partials) == SESSIONS and all(partials)

        await until(all_checkpointed, "every running turn to checkpoint its text")
        a.kill()
        await assert_all_answered(b, session_ids)
    finally:
        a.stop()
        b.stop()


async def test_a_turn_whose_tool_had_started_is_not_run_again(tmp_path: Path) -> None:
    from tests.conftest import APPS_TOML

    config = tmp_path / "apps.toml"
    config.write_text(APPS_TOML)
    database = tmp_path / "tool.sqlite3"
    env = {
        "DATABASE_URL": f"sqlite://{database}",
        "CONFAB_RECOVERY_SECONDS": str(BOUND),
        "CONFAB_CONFIG": str(config),
    }
    key = cli(env, "keys", "create", "--app", "gamma")
    ledger = tmp_path / "ledger.txt"
    session_id = new_id()
    first = ServerProcess(env, tmp_path / "first.log")
    first.wait_ready()
    try:
        call = "/tool ledger " + json.dumps({"path": str(ledger), "seconds": 60})
        await post(first, SEND, key, s=session_id, c=call)
        await post(first, SEND, key, s=session_id, c="after the tool")

        async def tool_ran() -> bool:
            return ledger.exists() and ledger.read_text().strip() != ""

        await until(tool_ran, "the tool to start")
    finally:
        first.kill()
    second = ServerProcess(env, tmp_path / "second.log")
    second.wait_ready()
    try:

        async def answered() -> bool:
            state = await session_state(second, session_id, key)
            last = state["messages"]["nodes"][-1]
            return not state["isProcessing"] and last["content"] == "You said: after the tool"

        await until(answered, "the queued message to be answered")
        state = await session_state(second, session_id, key)
        assert ledger.read_text().splitlines() == [session_id]  # the tool ran once
        errors = [e["payload"]["message"] for e in state["systemEvents"] if e["kind"] == "error"]
        assert any("tool had started" in message for message in errors), errors
    finally:
        second.stop()


async def test_a_graceful_restart_keeps_the_queue(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite://{tmp_path / 'restart.sqlite3'}"}
    first = ServerProcess(env, tmp_path / "first.log")
    first.wait_ready()
    session_id = new_id()
    await post(first, SEND, s=session_id, c=f"/slow 4 {LONG_TEXT}")
    await post(first, SEND, s=session_id, c="waiting behind it")
    assert first.stop(), first.log()
    second = ServerProcess(env, tmp_path / "second.log")
    second.wait_ready()
    try:

        async def answered() -> bool:
            nodes = (await session_state(second, session_id))["messages"]["nodes"]
            return any(m["content"] == "You said: waiting behind it" for m in nodes)

        await until(answered, "the queued message to be answered after the restart")
    finally:
        second.stop()


async def test_turns_of_one_session_never_overlap_across_replicas(
    live_env: dict[str, str], tmp_path: Path
) -> None:
    a, b = ServerProcess(live_env, tmp_path / "a.log"), ServerProcess(live_env, tmp_path / "b.log")
    a.wait_ready()
    b.wait_ready()
    try:
        session_id = new_id()
        await post(a, SEND, s=session_id, c="/slow 1.5 first")

        async def running_on_a() -> bool:
            return bool((await session_state(b, session_id))["isProcessing"])

        await until(running_on_a, "the first turn to start")
        await post(b, SEND, s=session_id, c="/slow 0.1 second")  # would finish first alone

        async def both_answered() -> bool:
            state = await session_state(a, session_id)
            answers = [m for m in state["messages"]["nodes"] if m["role"] == "ASSISTANT"]
            return len(answers) == 2 and not state["isProcessing"]

        await until(both_answered, "both answers")
        nodes = (await session_state(a, session_id))["messages"]["nodes"]
        answers = [m["content"] for m in nodes if m["role"] == "ASSISTANT"]
        assert answers == ["You said: first", "You said: second"]
    finally:
        a.stop()
        b.stop()
