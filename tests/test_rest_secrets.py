"""`/api/secrets` over HTTP (SQLite and PostgreSQL): the contract's shapes, handles
that a tool resolves while the model sees only handles, redaction of everything a
tool produces, bounds (all or nothing), other clients' handles, idle expiry, and
503 without CONFAB_SECRET_KEY."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from models import ClientSecret
from runtime import keys
from runtime.agents.builtin import BuiltinBackend
from runtime.agents.protocol import ModelChunk, ModelRequest
from runtime.events.envelope import utc_now
from server import create_app
from settings import Settings
from tests.conftest import new_id, started
from tests.rest_client import assert_error, chat_and_wait, graphql, headers, ok
from tests.vault_support import (
    SECRET_KEY,
    assert_absent,
    eventually,
    sha256,
    sql_dump,
    tool_output,
    use_secret,
    vault_settings,
)

VALUE = "sk-live-Zq9!wX7#secret-VALUE-that-must-never-leak"
HANDLE = "$SECRET:api_key"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return vault_settings(settings, tmp_path)


@pytest.fixture
async def vault_key(app: Starlette) -> str:
    clear, _ = await keys.create_key(["vault"], "tests")
    return clear


@pytest.fixture
def model_requests(monkeypatch: pytest.MonkeyPatch) -> list[ModelRequest]:
    """Every request the builtin model receives (what the model sees)."""
    seen: list[ModelRequest] = []
    original = BuiltinBackend.stream

    def recording(self: BuiltinBackend, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        seen.append(request)
        return original(self, request)

    monkeypatch.setattr(BuiltinBackend, "stream", recording)
    return seen


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://confab.test") as http:
            yield http


async def ingest(
    http: httpx.AsyncClient, client_id: Any, secrets: Any, key: str | None = None
) -> httpx.Response:
    return await http.post(
        "/api/secrets", json={"client_id": client_id, "secrets": secrets}, headers=headers(key=key)
    )


async def stored(client_id: str, app: str = "default") -> dict[str, ClientSecret]:
    rows = await ClientSecret.filter(app_id=app, client_id=client_id)
    return {row.name: row for row in rows}


async def run_tool(
    http: httpx.AsyncClient, client_id: str | None, token: str, key: str | None = None, **kw: Any
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    session_id = new_id()
    params = {"client_id": client_id} if client_id is not None else {}
    snapshot = await chat_and_wait(
        http,
        session_id,
        use_secret(token, **kw),
        key,
        "vault" if key else None,
        **params,
    )
    return session_id, snapshot, tool_output(snapshot)


# -- the contract ------------------------------------------------------------------


async def test_ingest_answers_handles_and_stores_ciphertext_only(
    client: httpx.AsyncClient,
) -> None:
    client_id = f"cli-{new_id()}"
    body = ok(await ingest(client, client_id, {"api_key": VALUE, "rpc.url-2": "https://x"}))
    assert body == {"handles": {"api_key": HANDLE, "rpc.url-2": "$SECRET:rpc.url-2"}}
    rows = await stored(client_id)
    assert set(rows) == {"api_key", "rpc.url-2"}
    assert_absent(VALUE, bytes(rows["api_key"].ciphertext), "the ciphertext")
    assert rows["api_key"].expires_at > utc_now()
    assert_absent(VALUE, await sql_dump(), "the database")


async def test_delete_one_and_clear(client: httpx.AsyncClient) -> None:
    client_id = f"cli-{new_id()}"
    ok(await ingest(client, client_id, {"a": "one", "b": "two", "c": "three"}))
    params = {"client_id": client_id}
    assert ok(await client.delete("/api/secrets/a", params=params)) == {"deleted": True}
    assert ok(await client.delete("/api/secrets/a", params=params)) == {"deleted": False}
    assert set(await stored(client_id)) == {"b", "c"}
    assert ok(await client.delete("/api/secrets", params=params)) == {"cleared": True}
    assert await stored(client_id) == {}
    assert ok(await client.delete("/api/secrets", params=params)) == {"cleared": True}


async def test_reingesting_a_name_replaces_its_value(
    client: httpx.AsyncClient, model_requests: list[ModelRequest]
) -> None:
    client_id = f"cli-{new_id()}"
    ok(await ingest(client, client_id, {"api_key": "first-value"}))
    ok(await ingest(client, client_id, {"api_key": VALUE}))
    assert len(await stored(client_id)) == 1
    _, _, output = await run_tool(client, client_id, HANDLE)
    assert output["result"]["sha256"] == sha256(VALUE)


async def test_secrets_belong_to_the_callers_app(client: httpx.AsyncClient, vault_key: str) -> None:
    client_id = f"cli-{new_id()}"
    ok(await ingest(client, client_id, {"api_key": VALUE}, key=vault_key))
    assert set(await stored(client_id, "vault")) == {"api_key"}
    assert await stored(client_id, "default") == {}
    # An app asked for without its key: 401, nothing stored.
    response = await client.post(
        "/api/secrets",
        params={"app": "beta"},
        json={"client_id": client_id, "secrets": {"x": "y"}},
    )
    assert_error(response, 401)
    assert await stored(client_id, "beta") == {}


# -- tools get values; the model, the store and the logs only handles --------------


async def test_a_tool_receives_the_value_and_everything_else_sees_the_handle(
    client: httpx.AsyncClient,
    model_requests: list[ModelRequest],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id = f"cli-{new_id()}"
    ok(await ingest(client, client_id, {"api_key": VALUE}))
    session_id, snapshot, output = await run_tool(client, client_id, f"Bearer {HANDLE}")
    # The tool computed over the value (its hash proves it had it)...
    assert output["result"]["sha256"] == sha256(f"Bearer {VALUE}")
    assert output["result"]["length"] == len(f"Bearer {VALUE}")
    # ...and its echo of it came back as the handle.
    assert output["result"]["echo"] == f"Bearer {HANDLE}"
    seen_by_model = json.dumps([r.messages for r in model_requests])
    assert HANDLE in seen_by_model
    assert_absent(VALUE, seen_by_model.encode(), "what the model saw")
    assert_absent(VALUE, json.dumps(snapshot).encode(), "the snapshot")
    events = ok(await client.get("/api/events", headers=headers(session_id)))
    assert_absent(VALUE, json.dumps(events).encode(), "the system events")
    query = """query($s: ID!) { session(id: $s) {
        messages(first: 20) { nodes { content toolCalls toolResults } }
        systemEvents { payload } } }"""
    answer = await graphql(client, query, s=session_id)
    assert HANDLE in json.dumps(answer)
    assert_absent(VALUE, json.dumps(answer).encode(), "the GraphQL answer")
    assert_absent(VALUE, await sql_dump(), "the database")
    assert_absent(VALUE, caplog.text.encode(), "the log")


async def test_a_failing_tool_is_redacted_and_logged_without_traceback(
    client: httpx.AsyncClient,
    model_requests: list[ModelRequest],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id = f"cli-{new_id()}"
    ok(await ingest(client, client_id, {"api_key": VALUE}))
    _, _, output = await run_tool(client, client_id, HANDLE, fail=True)
    assert output == {"error": f"RuntimeError: the service refused the token {HANDLE}"}
    assert "use_secret failed" in caplog.text
    assert_absent(VALUE, caplog.text.encode(), "the log")
    for record in caplog.records:
        assert record.exc_info is None or "use_secret" not in record.getMessage()
    assert_absent(VALUE, json.dumps([r.messages for r in model_requests]).encode(), "the model")
    assert_absent(VALUE, await sql_dump(), "the database")


async def test_handles_resolve_only_for_the_sessions_own_client_and_app(
    client: httpx.AsyncClient, vault_key: str, model_requests: list[ModelRequest]
) -> None:
    owner = f"cli-{new_id()}"
    ok(await ingest(client, owner, {"api_key": VALUE}))
    ok(await ingest(client, owner, {"api_key": "vault-app-value"}, key=vault_key))
    # Another client, no client at all, another app's same client id: unresolved.
    for client_id, key in ((f"cli-{new_id()}", None), (None, None)):
        _, _, output = await run_tool(client, client_id, HANDLE, key)
        assert output["result"]["sha256"] == sha256(HANDLE), client_id
    _, _, output = await run_tool(client, owner, HANDLE, vault_key)
    assert output["result"]["sha256"] == sha256("vault-app-value")
    _, _, output = await run_tool(client, owner, "$SECRET:missing and $SECRET:api_key.")
    assert output["result"]["sha256"] == sha256(f"$SECRET:missing and {VALUE}.")
    assert output["result"]["echo"] == "$SECRET:missing and $SECRET:api_key."


async def test_a_state_request_associates_an_existing_session_with_its_client(
    client: httpx.AsyncClient,
) -> None:
    """The CLI syncs its state (with its client_id) on a session that already exists:
    from then on the session's tools resolve that client's handles."""
    owner = f"cli-{new_id()}"
    ok(await ingest(client, owner, {"api_key": VALUE}))
    session_id = new_id()
    await chat_and_wait(client, session_id, "hello first")  # no client yet
    synced = await client.get(
        "/api/state", params={"client_id": owner}, headers=headers(session_id)
    )
    ok(synced)
    snapshot = await chat_and_wait(client, session_id, use_secret(HANDLE))
    assert tool_output(snapshot)["result"]["sha256"] == sha256(VALUE)


# -- bad input: a clear 400, nothing stored ----------------------------------------

TOO_BIG = "x" * 4097


@pytest.mark.parametrize(
    ("client_id", "secrets", "names"),
    [
        ("ok-client", {"good": "fine", "big": TOO_BIG}, "secrets.big"),
        ("ok-client", {"good": "fine", "bad name": "v"}, "secrets"),
        ("ok-client", {"good": "fine", "": "v"}, "secrets"),
        ("ok-client", {"good": "fine", "n" * 65: "v"}, "secrets"),
        ("ok-client", {"good": "fine", "a/b": "v"}, "secrets"),
        ("ok-client", {"good": "fine", "empty": ""}, "secrets.empty"),
        ("ok-client", {"good": "fine", "number": 42}, "secrets.number"),
        ("ok-client", {"good": "fine", "nested": {"a": "b"}}, "secrets.nested"),
        ("ok-client", ["not", "an", "object"], "secrets"),
        ("ok-client", None, "secrets"),
        ("ok-client", {f"s{i}": "v" for i in range(33)}, "at most 32"),
        (None, {"good": "fine"}, "client_id"),
        ("", {"good": "fine"}, "client_id"),
        ("has space", {"good": "fine"}, "client_id"),
        ("c" * 129, {"good": "fine"}, "client_id"),
        ("caf\u00e9", {"good": "fine"}, "client_id"),
        (17, {"good": "fine"}, "client_id"),
    ],
)
async def test_bad_input_is_a_400_and_stores_nothing(
    client: httpx.AsyncClient, client_id: Any, secrets: Any, names: str
) -> None:
    before = await ClientSecret.all().count()
    reason = assert_error(await ingest(client, client_id, secrets), 400)
    assert names in reason, reason
    assert_absent(TOO_BIG, reason.encode(), "the error")
    assert await ClientSecret.all().count() == before


async def test_the_count_includes_what_the_client_already_has(client: httpx.AsyncClient) -> None:
    client_id = f"cli-{new_id()}"
    ok(await ingest(client, client_id, {f"s{i}": "v" for i in range(30)}))
    reason = assert_error(await ingest(client, client_id, {"n1": "v", "n2": "v", "n3": "v"}), 400)
    assert "at most 32" in reason, reason
    assert "has 30" in reason, reason
    assert len(await stored(client_id)) == 30
    # Replacing existing names is not adding: 30 + 2 new is within the bound.
    ok(await ingest(client, client_id, {"s0": "new", "s1": "new", "n1": "v", "n2": "v"}))
    assert len(await stored(client_id)) == 32


async def test_malformed_requests(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/secrets"), 400)
    assert_error(await client.post("/api/secrets", content=b"{nope"), 400)
    assert_error(await client.post("/api/secrets", json=["x"]), 400)
    assert "client_id" in assert_error(await client.delete("/api/secrets"), 400)
    assert "client_id" in assert_error(await client.delete("/api/secrets/a"), 400)
    bad = {"client_id": "bad id"}
    assert "client_id" in assert_error(await client.delete("/api/secrets", params=bad), 400)
    good = {"client_id": "fine"}
    assert_error(await client.delete("/api/secrets/bad%20name", params=good), 400)
    assert_error(await client.get("/api/secrets", params=good), 405)


# -- expiry --------------------------------------------------------------------------


async def test_an_idle_secret_expires_and_is_swept(settings: Settings) -> None:
    quick = settings.with_overrides(secret_idle_seconds=1, janitor_interval=0.2)
    async with serving(quick) as http:
        client_id = f"cli-{new_id()}"
        ok(await ingest(http, client_id, {"api_key": VALUE}))

        async def swept() -> bool:
            return await stored(client_id) == {}

        await eventually(swept, "the janitor deletes the expired secret")
        _, _, output = await run_tool(http, client_id, HANDLE)
        assert output["result"]["sha256"] == sha256(HANDLE)


async def test_an_expired_secret_never_resolves_even_before_the_sweep(
    settings: Settings,
) -> None:
    # No janitor sweep during the test: expiry alone must stop resolution.
    slow_janitor = settings.with_overrides(secret_idle_seconds=1, janitor_interval=3600)
    async with serving(slow_janitor) as http:
        client_id = f"cli-{new_id()}"
        ok(await ingest(http, client_id, {"api_key": VALUE}))
        row = (await stored(client_id))["api_key"]

        async def past_expiry() -> bool:
            return utc_now() > row.expires_at

        await eventually(past_expiry, "the secret's idle time passes")
        _, _, output = await run_tool(http, client_id, HANDLE)
        assert output["result"]["sha256"] == sha256(HANDLE)
        assert "api_key" in await stored(client_id)  # expired, not yet swept


async def test_using_a_secret_pushes_its_expiry_back(settings: Settings) -> None:
    async with serving(settings.with_overrides(secret_idle_seconds=8)) as http:
        client_id = f"cli-{new_id()}"
        ok(await ingest(http, client_id, {"api_key": VALUE}))
        before = (await stored(client_id))["api_key"]

        async def touchable() -> bool:  # a use is recorded at most every idle/4
            return utc_now() >= before.last_used_at + timedelta(seconds=2)

        await eventually(touchable, "the touch resolution passes")
        _, _, output = await run_tool(http, client_id, HANDLE)
        assert output["result"]["sha256"] == sha256(VALUE)
        after = (await stored(client_id))["api_key"]
        assert after.expires_at > before.expires_at
        assert after.last_used_at > before.last_used_at


# -- without CONFAB_SECRET_KEY --------------------------------------------------------


async def test_without_a_server_key_the_endpoints_answer_503_and_the_rest_works(
    settings: Settings,
) -> None:
    async with serving(settings.with_overrides(secret_key=None)) as http:
        client_id = f"cli-{new_id()}"
        for response in (
            await ingest(http, client_id, {"api_key": VALUE}),
            await http.delete("/api/secrets", params={"client_id": client_id}),
            await http.delete("/api/secrets/api_key", params={"client_id": client_id}),
        ):
            assert "CONFAB_SECRET_KEY" in assert_error(response, 503)
        # Chat and tools work; a handle is just text.
        _, _, output = await run_tool(http, client_id, HANDLE)
        assert output["result"]["sha256"] == sha256(HANDLE)


def test_a_short_server_key_is_refused_at_startup() -> None:
    from settings import SettingsError

    with pytest.raises(SettingsError, match="at least 32 characters"):
        Settings.from_env({"CONFAB_SECRET_KEY": "too-short"})
    assert Settings.from_env({"CONFAB_SECRET_KEY": SECRET_KEY}).secret_key == SECRET_KEY
    assert SECRET_KEY not in repr(Settings.from_env({"CONFAB_SECRET_KEY": SECRET_KEY}))
