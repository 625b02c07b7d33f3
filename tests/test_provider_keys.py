"""`/api/control/provider-keys` over HTTP (SQLite and PostgreSQL): save, list and
delete a client's own provider keys, only their prefix ever shown, encrypted at
rest; 403 for an app that does not take them, 503 without CONFAB_SECRET_KEY; and
bring-your-own-key: an OpenAI-compatible model (a local fake) receives the
client's key, never echoed in errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response

from models import ProviderKey
from runtime import keys
from server import create_app
from settings import AppConfig, ModelConfig, Settings
from tests.conftest import new_id, started
from tests.fake_openai import FakeOpenAI, Handler, text
from tests.fake_openai import fake as fake  # a fixture
from tests.rest_client import assert_error, chat_and_wait, create_session, headers, ok
from tests.vault_support import assert_absent, eventually, sql_dump, vault_settings

CLIENT_KEY = "sk-client-Qm7vYz2LkP9wR4tX8nB1"
APP_KEY = "sk-app-key-0000000000000000"
PATH = "/api/control/provider-keys"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return vault_settings(settings, tmp_path)


@pytest.fixture
async def vault_key(app: Starlette) -> str:
    return (await keys.create_key(["vault"], "tests"))[0]


@pytest.fixture
async def beta_key(app: Starlette) -> str:
    return (await keys.create_key(["beta"], "tests"))[0]


@pytest.fixture
async def sealed_key(app: Starlette) -> str:
    return (await keys.create_key(["sealed"], "tests"))[0]


async def session_of_client(
    http: httpx.AsyncClient, client_id: str, key: str | None = None, app: str | None = None
) -> str:
    """A session associated with the client, as its chat request does it."""
    session_id = new_id()
    await chat_and_wait(http, session_id, "hello", key, app, client_id=client_id)
    return session_id


def save_body(provider: Any = "openai", api_key: Any = CLIENT_KEY, label: Any = "mine") -> Any:
    return {"provider": provider, "api_key": api_key, "label": label}


async def rows(client_id: str) -> list[ProviderKey]:
    return await ProviderKey.filter(client_id=client_id).order_by("provider")


# -- the contract -----------------------------------------------------------------


async def test_save_list_replace_delete(client: httpx.AsyncClient) -> None:
    client_id = f"cli-{new_id()}"
    session_id = await session_of_client(client, client_id)
    sent = headers(session_id)
    assert ok(await client.get(PATH, headers=sent)) == {"provider_keys": []}
    saved = await client.post(PATH, json=save_body(), headers=sent)
    assert ok(saved) == {
        "key": {"provider": "openai", "key_prefix": "sk-cli", "label": "mine", "is_active": True}
    }
    assert CLIENT_KEY not in saved.text
    listed = await client.get(PATH, headers=sent)
    assert ok(listed) == {
        "provider_keys": [
            {"provider": "openai", "key_prefix": "sk-cli", "label": "mine", "is_active": True}
        ]
    }
    assert CLIENT_KEY not in listed.text
    # Saving again replaces it (one key per provider); another provider is another key.
    ok(await client.post(PATH, json=save_body(api_key="gsk_" + "z" * 30, label=""), headers=sent))
    ok(await client.post(PATH, json=save_body("Anthropic", "sk-ant-" + "a" * 30), headers=sent))
    listed_again = ok(await client.get(PATH, headers=sent))["provider_keys"]
    assert [(k["provider"], k["key_prefix"], k["label"]) for k in listed_again] == [
        ("anthropic", "sk-ant", "mine"),
        ("openai", "gsk_zz", ""),
    ]
    assert ok(await client.delete(f"{PATH}/openai", headers=sent)) == {"deleted": True}
    assert ok(await client.delete(f"{PATH}/openai", headers=sent)) == {"deleted": False}
    assert [r.provider for r in await rows(client_id)] == ["anthropic"]


async def test_keys_are_encrypted_at_rest(client: httpx.AsyncClient) -> None:
    client_id = f"cli-{new_id()}"
    session_id = await session_of_client(client, client_id)
    ok(await client.post(PATH, json=save_body(), headers=headers(session_id)))
    (row,) = await rows(client_id)
    assert row.key_prefix == CLIENT_KEY[:6]
    assert_absent(CLIENT_KEY, bytes(row.ciphertext), "the ciphertext")
    assert_absent(CLIENT_KEY, await sql_dump(), "the database")


async def test_the_client_comes_from_the_session_or_the_query(
    client: httpx.AsyncClient,
) -> None:
    unknown = headers(new_id())
    reason = assert_error(await client.get(PATH, headers=unknown), 400)
    assert "client_id" in reason
    # A session without a client yet: the same.
    bare = new_id()
    await chat_and_wait(client, bare, "no client")
    assert "client_id" in assert_error(await client.get(PATH, headers=headers(bare)), 400)
    client_id = f"cli-{new_id()}"
    params = {"client_id": client_id}
    ok(await client.post(PATH, params=params, json=save_body(), headers=unknown))
    assert len(ok(await client.get(PATH, params=params, headers=unknown))["provider_keys"]) == 1
    # The session of that client sees the same keys.
    session_id = await session_of_client(client, client_id)
    assert len(ok(await client.get(PATH, headers=headers(session_id)))["provider_keys"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (save_body(provider="openia"), "known providers: anthropic"),
        (save_body(provider=None), "provider"),
        (save_body(provider=7), "provider"),
        (save_body(api_key="short"), "api_key"),
        (save_body(api_key="sk-with space-in-it-000"), "api_key"),
        (save_body(api_key="sk-\u00e9" + "x" * 20), "api_key"),
        (save_body(api_key="x" * 513), "api_key"),
        (save_body(api_key=None), "api_key"),
        (save_body(api_key=12345678901234567890), "api_key"),
        (save_body(label="l" * 201), "label"),
        (save_body(label=["x"]), "label"),
        (None, "JSON"),
    ],
)
async def test_bad_input_is_a_400_and_stores_nothing(
    client: httpx.AsyncClient, body: Any, field: str
) -> None:
    client_id = f"cli-{new_id()}"
    session_id = await session_of_client(client, client_id)
    response = await client.post(PATH, json=body, headers=headers(session_id))
    reason = assert_error(response, 400)
    assert field in reason, reason
    assert "sk-with" not in reason
    assert await rows(client_id) == []
    assert ok(await client.get(PATH, headers=headers(session_id))) == {"provider_keys": []}


async def test_malformed_requests(client: httpx.AsyncClient) -> None:
    assert "X-Session-Id" in assert_error(await client.get(PATH), 400)
    assert_error(await client.get(PATH, headers=headers("has space")), 400)
    bad_client = {"client_id": "bad id"}
    assert_error(await client.get(PATH, params=bad_client, headers=headers(new_id())), 400)
    fine = {"client_id": "fine"}
    reason = assert_error(
        await client.delete(f"{PATH}/nope", params=fine, headers=headers(new_id())), 400
    )
    assert "known providers" in reason


async def test_another_apps_session_is_not_found(
    client: httpx.AsyncClient, vault_key: str, beta_key: str
) -> None:
    session_id = await session_of_client(client, f"cli-{new_id()}", vault_key, "vault")
    ok(await client.post(PATH, json=save_body(), headers=headers(session_id, vault_key)))
    # The session id alone acts in the session's app (the legacy capability)...
    assert len(ok(await client.get(PATH, headers=headers(session_id)))["provider_keys"]) == 1
    # ...a key for another app does not reach it.
    assert_error(await client.get(PATH, headers=headers(session_id, beta_key)), 404)
    response = await client.delete(f"{PATH}/openai", headers=headers(session_id, beta_key))
    assert_error(response, 404)


async def test_an_app_can_turn_provider_keys_off(
    client: httpx.AsyncClient, sealed_key: str
) -> None:
    client_id = f"cli-{new_id()}"
    session_id = await session_of_client(client, client_id, sealed_key, "sealed")
    for response in (
        await client.get(PATH, headers=headers(session_id, sealed_key)),
        await client.post(PATH, json=save_body(), headers=headers(session_id, sealed_key)),
        await client.delete(f"{PATH}/openai", headers=headers(session_id, sealed_key)),
    ):
        assert "provider_keys = false" in assert_error(response, 403)
    assert await rows(client_id) == []


async def test_without_a_server_key_the_endpoints_answer_503(settings: Settings) -> None:
    application = create_app(settings.with_overrides(secret_key=None))
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            session_id = await session_of_client(http, f"cli-{new_id()}")
            sent = headers(session_id)
            for response in (
                await http.get(PATH, headers=sent),
                await http.post(PATH, json=save_body(), headers=sent),
                await http.delete(f"{PATH}/openai", headers=sent),
            ):
                assert "CONFAB_SECRET_KEY" in assert_error(response, 503)


# -- bring your own key ---------------------------------------------------------------


@asynccontextmanager
async def byok_app(
    fake: FakeOpenAI, settings: Settings, provider_keys: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The default app on the OpenAI-compatible backend (the fake), with its key
    (`CONFAB_TEST_APP_OPENAI_KEY`, set by the caller)."""
    model = ModelConfig(
        backend="openai",
        models=("gpt-test",),
        options={
            "base_url": f"http://127.0.0.1:{fake.port}/v1",
            "api_key_env": "CONFAB_TEST_APP_OPENAI_KEY",
            "timeout": 5,
            "max_retries": 0,
        },
    )
    config = AppConfig(
        name="default", display_name="Default", model=model, provider_keys=provider_keys
    )
    application = create_app(settings.with_overrides(apps={"default": config}))
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


@pytest.fixture
async def byok(
    fake: FakeOpenAI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("CONFAB_TEST_APP_OPENAI_KEY", APP_KEY)
    async with byok_app(fake, settings) as http:
        yield http


async def test_a_saved_key_is_not_used_once_the_app_turns_provider_keys_off(
    fake: FakeOpenAI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFAB_TEST_APP_OPENAI_KEY", APP_KEY)
    client_id, session_id = f"cli-{new_id()}", new_id()
    async with byok_app(fake, settings) as http:
        fake.script = [text("Hello")]
        await chat_and_wait(http, session_id, "Hi", client_id=client_id)
        ok(await http.post(PATH, json=save_body(), headers=headers(session_id)))
        fake.script = [text("Mine")]
        await chat_and_wait(http, session_id, "Again", client_id=client_id)
        assert authorizations(fake)[-1] == f"Bearer {CLIENT_KEY}"
    # The operator sets provider_keys = false and restarts: the app's key again.
    async with byok_app(fake, settings, provider_keys=False) as http:
        fake.script = [text("The app's")]
        await chat_and_wait(http, session_id, "Later", client_id=client_id)
        assert authorizations(fake)[-1] == f"Bearer {APP_KEY}"


def echoing_rejection() -> Handler:
    """A provider refusing the key, and quoting it in its error."""

    async def respond() -> Response:
        message = f"Incorrect API key provided: {CLIENT_KEY}"
        return JSONResponse({"error": {"message": message}}, status_code=401)

    return respond


def authorizations(fake: FakeOpenAI, streamed: bool = True) -> list[str]:
    return [
        headers_["authorization"]
        for request, headers_ in zip(fake.requests, fake.headers, strict=True)
        if bool(request.get("stream")) == streamed
    ]


async def test_the_clients_own_key_is_used_for_its_turns(
    byok: httpx.AsyncClient, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id = f"cli-{new_id()}"
    session_id = new_id()
    fake.script = [text("Hello")]
    await chat_and_wait(byok, session_id, "Hi", client_id=client_id)
    assert authorizations(fake) == [f"Bearer {APP_KEY}"]

    sent = headers(session_id)
    ok(await byok.post(PATH, json=save_body(), headers=sent))
    # A key for another provider is not this app's provider's.
    ok(await byok.post(PATH, json=save_body("groq", "gsk_" + "q" * 30), headers=sent))
    fake.script = [text("Mine now")]
    await chat_and_wait(byok, session_id, "Again", client_id=client_id)
    assert authorizations(fake)[-1] == f"Bearer {CLIENT_KEY}"

    # A new session of the same client: its title is generated with the client's key.
    other = new_id()
    fake.script = [text("Fresh")]
    await chat_and_wait(byok, other, "Start", client_id=client_id)
    assert authorizations(fake)[-1] == f"Bearer {CLIENT_KEY}"

    async def titled() -> bool:
        return len(authorizations(fake, streamed=False)) >= 2

    await eventually(titled, "the new session's title is generated")
    assert authorizations(fake, streamed=False)[-1] == f"Bearer {CLIENT_KEY}"

    # The provider refuses it and quotes it: the failure says so without the key.
    fake.script = [echoing_rejection()]
    snapshot = await chat_and_wait(byok, session_id, "Fail", client_id=client_id)
    events = ok(await byok.get("/api/events", headers=sent))
    assert any("HTTP 401" in str(event) for event in events), events
    assert "[redacted key]" in str(events)
    for where, text_ in (("events", str(events)), ("snapshot", str(snapshot))):
        assert_absent(CLIENT_KEY, text_.encode(), where)
    assert_absent(CLIENT_KEY, caplog.text.encode(), "the log")
    assert_absent(CLIENT_KEY, await sql_dump(), "the database")

    # Deleted: the app's key again.
    ok(await byok.delete(f"{PATH}/openai", headers=sent))
    fake.script = [text("Back")]
    await chat_and_wait(byok, session_id, "Later", client_id=client_id)
    assert authorizations(fake)[-1] == f"Bearer {APP_KEY}"


async def test_a_session_without_a_client_uses_the_apps_key(
    byok: httpx.AsyncClient, fake: FakeOpenAI
) -> None:
    client_id = f"cli-{new_id()}"
    ok(
        await byok.post(
            PATH, params={"client_id": client_id}, json=save_body(), headers=headers(new_id())
        )
    )
    fake.script = [text("Hello")]
    await chat_and_wait(byok, new_id(), "Hi")
    await create_session(byok, new_id())
    assert authorizations(fake) == [f"Bearer {APP_KEY}"]
