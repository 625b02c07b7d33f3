"""Strict keys (`CONFAB_STRICT_KEYS`): a non-default app's session needs its own
app's key on every request, and listed web origins grant nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from runtime import keys
from server import create_app
from settings import Settings
from tests.conftest import new_id, new_wallet, started
from tests.rest_client import assert_error, chat, headers, ok, until_idle

FROM_WIDGET = {"Origin": "https://widget.example"}


@pytest.fixture
async def strict(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A strict server (in process) and a key of app `widget`."""
    application = create_app(settings.with_overrides(strict_keys=True))
    async with started(application):
        key, _ = await keys.create_key(["widget"], "tests")
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://confab.test") as http:
            yield http, key


async def test_a_listed_origin_grants_nothing(strict: tuple[httpx.AsyncClient, str]) -> None:
    http, key = strict
    session_id, wallet = new_id(), new_wallet()
    sent = {**headers(session_id), **FROM_WIDGET}
    ok(await http.post("/api/sessions", json={"public_key": wallet}, headers=sent))
    # created in `default` (the origin did not pick the widget app)...
    assert_error(await chat(http, session_id, "hi", key, "widget"), 404)
    # ...and asking for the app without the key is refused
    assert_error(await http.post("/api/sessions", params={"app": "widget"}, headers=sent), 401)


async def test_the_session_id_alone_is_not_enough(strict: tuple[httpx.AsyncClient, str]) -> None:
    http, key = strict
    session_id = new_id()
    ok(await chat(http, session_id, "hello", key, "widget"))
    await until_idle(http, session_id, key, "widget")
    for response in (
        await http.get("/api/state", headers=headers(session_id)),
        await http.get("/api/state", headers={**headers(session_id), **FROM_WIDGET}),
        await http.post("/api/system", params={"message": "x"}, headers=headers(session_id)),
        await http.delete(f"/api/sessions/{session_id}", headers=FROM_WIDGET),
    ):
        assert_error(response, 401)
    # with its key, all is there
    snapshot, _ = await until_idle(http, session_id, key, "widget")
    assert [m["content"] for m in snapshot["messages"]] == ["hello", "You said: hello"]
