"""The grep test: a real server process (PostgreSQL, Redis, debug logging) runs tools
that use a client's secret, one succeeding and one failing, both echoing the value
in every way they can; then everything the server stored (every row of every
table, every Redis key and stream) and everything it logged and streamed is
searched for the value, which is nowhere (the database holds only its ciphertext)."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.conftest import new_id
from tests.live import cli
from tests.processes import ServerProcess
from tests.rest_client import chat, graphql, headers, ok, until_idle, updates
from tests.vault_server import env, http, server, vault_key  # noqa: F401 - fixtures
from tests.vault_support import (
    assert_absent,
    postgres_dump,
    redis_dump,
    sha256,
    tool_output,
    use_secret,
)


async def test_a_secret_value_is_nowhere_the_server_stored_or_logged(
    http: httpx.AsyncClient,
    server: ServerProcess,
    vault_key: str,
    env: dict[str, str],
    redis_url: str,
) -> None:
    value = f"sk-live-{uuid.uuid4()}-VALUE!"
    client_id = f"cli-{new_id()}"
    session_id = new_id()
    handle = "$SECRET:api_key"
    stored = ok(
        await http.post(
            "/api/secrets",
            json={"client_id": client_id, "secrets": {"api_key": value}},
            headers=headers(key=vault_key),
        )
    )
    assert stored == {"handles": {"api_key": handle}}
    message = use_secret(handle) + "\n" + use_secret(f"token={handle}", fail=True)
    async with updates(http, session_id, vault_key, "vault") as stream:
        ok(await chat(http, session_id, message, vault_key, "vault", client_id=client_id))
        completes = await stream.wait_for_type("tool_complete", 2)
        snapshot, _ = await until_idle(http, session_id, vault_key, "vault")
    by_call = {event["call_id"]: event for event in completes}
    assert len(by_call) == 2
    succeeded = next(e for e in completes if "error" not in e["result"])
    failed = next(e for e in completes if "error" in e["result"])
    # The tool had the value (its hash says so); what came back holds the handle.
    assert succeeded["result"]["sha256"] == sha256(value)
    assert succeeded["result"]["echo"] == handle
    assert (
        failed["result"]["error"] == f"RuntimeError: the service refused the token token={handle}"
    )
    started = [e for e in stream.of_type("tool_update") if "arguments" in e["result"]]
    assert sorted(e["result"]["arguments"]["token"] for e in started) == [handle, f"token={handle}"]
    progress = [e for e in stream.of_type("tool_update") if "progress" in e["result"]]
    assert {e["result"]["progress"]["received"] for e in progress} == {handle, f"token={handle}"}
    assert tool_output(snapshot)

    answered = await graphql(
        http,
        "query($s: ID!) { session(id: $s) { messages(first: 50) { nodes { content "
        "toolCalls toolResults } } systemEvents { payload } } }",
        vault_key,
        s=session_id,
    )
    assert handle in json.dumps(answered)  # the tool's calls and results, with handles
    exported = cli(env, "sessions", "export", session_id)
    assert session_id in exported
    log = server.log()
    assert " DEBUG " in log  # everything was logged
    assert "use_secret failed" in log
    database = await postgres_dump(env["DATABASE_URL"])
    assert client_id.encode() in database  # the ciphertext's row is there...
    assert handle.encode() in database  # ...and the tool's messages, with handles
    redis = await redis_dump(redis_url)
    assert session_id.encode() in redis  # the session's events went through Redis
    for where, haystack in (
        ("the update stream", json.dumps(stream.events).encode()),
        ("the snapshot", json.dumps(snapshot).encode()),
        ("the GraphQL answer", json.dumps(answered).encode()),
        ("the session's export", exported.encode()),
        ("the server log", log.encode()),
        ("the database", database),  # ...but not the value, in any form
        ("Redis", redis),
    ):
        assert_absent(value, haystack, where)
