"""A replica dying mid-turn (SIGKILL): the turn is recovered within the bound,
elsewhere or by the restarted process, and nothing acknowledged is lost. And one
session's turns never overlap across replicas."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.conftest import new_id
from tests.live import post
from tests.processes import ServerProcess

BOUND = 3.0  # CONFAB_RECOVERY_SECONDS in these tests
SEND = "mutation($s: ID!, $c: String!) { sendMessage(sessionId: $s, content: $c) { id } }"
STATE = """
query($s: ID!) {
  session(id: $s) {
    isProcessing
    messages(first: 20) { nodes { role content } }
    systemEvents { kind payload }
  }
}"""


async def processing(server: ServerProcess, session_id: str) -> dict[str, Any]:
    return (await post(server, STATE, s=session_id))["session"]  # type: ignore[no-any-return]


async def wait_recovered(server: ServerProcess, session_id: str, since: float) -> float:
    while time.monotonic() - since < BOUND * 3:
        if not (await processing(server, session_id))["isProcessing"]:
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    raise AssertionError(f"not recovered within {BOUND * 3} s")


def assert_recovered(session: dict[str, Any], question: str) -> None:
    assert session["isProcessing"] is False
    assert [m["content"] for m in session["messages"]["nodes"] if m["role"] == "USER"] == [question]
    assert any(
        e["kind"] == "error" and "interrupted" in e["payload"]["message"]
        for e in session["systemEvents"]
    ), session["systemEvents"]


async def test_another_replica_recovers_a_killed_replicas_turn(
    live_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**live_env, "CONFAB_RECOVERY_SECONDS": str(BOUND)}
    a, b = ServerProcess(env, tmp_path / "a.log"), ServerProcess(env, tmp_path / "b.log")
    a.wait_ready()
    b.wait_ready()
    try:
        session_id = new_id()
        question = "/slow 30 a very long answer"
        await post(a, SEND, s=session_id, c=question)
        await asyncio.sleep(0.5)
        assert (await processing(b, session_id))["isProcessing"] is True
        a.kill()
        killed = time.monotonic()
        took = await wait_recovered(b, session_id, killed)
        assert took <= BOUND * 2, took  # lease expiry (bound/3) + check (bound/3) + margin
        assert_recovered(await processing(b, session_id), question)
        await post(b, SEND, s=session_id, c="still usable?")  # B serves the session now
        for _ in range(50):
            session = await processing(b, session_id)
            if not session["isProcessing"]:
                break
            await asyncio.sleep(0.1)
        assert session["messages"]["nodes"][-1]["content"] == "You said: still usable?"
    finally:
        a.stop()
        b.stop()


async def test_the_restarted_process_recovers_its_own_turn(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite://{tmp_path / 'crash.sqlite3'}",
        "CONFAB_RECOVERY_SECONDS": str(BOUND),
    }
    first = ServerProcess(env, tmp_path / "first.log")
    first.wait_ready()
    session_id = new_id()
    question = "/slow 30 interrupted by a crash"
    await post(first, SEND, s=session_id, c=question)
    await asyncio.sleep(0.3)
    first.kill()
    second = ServerProcess(env, tmp_path / "second.log")
    second.wait_ready()
    try:
        await wait_recovered(second, session_id, time.monotonic())
        assert_recovered(await processing(second, session_id), question)
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
        await asyncio.sleep(0.2)
        await post(b, SEND, s=session_id, c="/slow 0.1 second")  # would finish first alone
        for _ in range(100):
            session = await processing(a, session_id)
            answers = [m for m in session["messages"]["nodes"] if m["role"] == "ASSISTANT"]
            if len(answers) == 2 and not session["isProcessing"]:
                break
            await asyncio.sleep(0.1)
        assert [m["content"] for m in answers] == ["You said: first", "You said: second"]
    finally:
        a.stop()
        b.stop()
