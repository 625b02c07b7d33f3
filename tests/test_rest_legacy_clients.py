"""The legacy widget, client library and CLI against a keyed app (issue 14).

What they do that the plain contract tests do not: open the update stream before
the session exists and without the key, create and list threads without the key
(from the app's web origin), post a system message before the first chat, use
opaque text session ids, delete threads that were never sent. Each test runs
against a real server on SQLite (in-process bus) and on PostgreSQL + Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import new_id, new_wallet
from tests.processes import ServerProcess, running
from tests.rest_client import (
    assert_error,
    assert_legacy_message,
    chat,
    chat_and_wait,
    create_session,
    graphql,
    headers,
    ok,
    state,
    until_idle,
    updates,
)

WIDGET_ORIGIN = "https://widget.example"
FROM_WIDGET = {"Origin": WIDGET_ORIGIN}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def legacy_env(
    request: pytest.FixtureRequest,
    live_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    """SQLite with the in-process bus, or PostgreSQL + Redis."""
    env = dict(live_env)
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("legacy-sqlite")
        env["DATABASE_URL"] = f"sqlite://{folder / 'confab.sqlite3'}"
        env["CONFAB_EVENT_BUS"] = "memory://"
    return env


@pytest.fixture(scope="module")
def legacy_server(
    legacy_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running(legacy_env, tmp_path_factory.mktemp("legacy") / "server.log") as process:
        yield process


def _key(env: dict[str, str], app: str) -> str:
    from tests.live import cli

    return cli(env, "keys", "create", "--app", app)


@pytest.fixture(scope="module")
def widget_key(legacy_server: ServerProcess, legacy_env: dict[str, str]) -> str:
    """A key of app `widget`, made in the server's own database (once it migrated it)."""
    return _key(legacy_env, "widget")


@pytest.fixture(scope="module")
def alpha_key(legacy_server: ServerProcess, legacy_env: dict[str, str]) -> str:
    return _key(legacy_env, "alpha")


@pytest.fixture
async def http(legacy_server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=legacy_server.url, timeout=10) as client:
        yield client


# -- 1. a stream opened before the session exists, without the key ---------------------


async def test_keyless_stream_follows_the_session_into_the_app_that_creates_it(
    http: httpx.AsyncClient, widget_key: str
) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:  # the session header alone
        ok(await chat(http, session_id, '/tool progress {"steps": 2}', widget_key, "widget"))
        await stream.wait_for_type("tool_complete")
        await stream.wait_for_type("title_changed")
    updates_seen = stream.of_type("tool_update")
    assert updates_seen
    assert all(e["tool_name"] == "progress" for e in updates_seen)
    assert stream.of_type("tool_complete")[0]["result"] == {"done": 2}
    assert all(e["session_id"] == session_id for e in stream.events)


async def test_a_keyed_stream_stays_in_its_keys_app(
    http: httpx.AsyncClient, widget_key: str, alpha_key: str
) -> None:
    """Opened with app alpha's key before app widget creates the session: it gets
    nothing of widget's (while a keyless stream of the same session gets it all)."""
    session_id = new_id()
    async with (
        updates(http, session_id, alpha_key) as other_app,
        updates(http, session_id) as keyless,
    ):
        ok(await chat(http, session_id, "hello there", widget_key, "widget"))
        await keyless.wait_for_type("title_changed")
        await until_idle(http, session_id, widget_key, "widget")
        # The title is the last thing a turn publishes: had alpha's stream been
        # given widget's events, it would have had them by now.
        ok(
            await http.post(
                "/api/system", params={"message": "marker"}, headers=headers(session_id)
            )
        )
        await keyless.wait_for_type("system_notice")
    assert other_app.events == []


async def test_stream_opened_on_one_replica_gets_events_of_a_session_created_on_another(
    replicas: tuple[ServerProcess, ServerProcess], widget_cli_key: str
) -> None:
    first, second = replicas
    session_id = new_id()
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=10) as on_a,
        httpx.AsyncClient(base_url=second.url, timeout=10) as on_b,
        updates(on_a, session_id) as stream,
    ):
        message = '/tool progress {"steps": 1}'
        ok(await chat(on_b, session_id, message, widget_cli_key, "widget"))
        await stream.wait_for_type("tool_complete")
        await stream.wait_for_type("title_changed")
    assert {e["session_id"] for e in stream.events} == {session_id}


# -- 2. thread list and creation without the key ------------------------------------


async def test_keyless_requests_from_a_listed_origin_act_in_its_app(
    http: httpx.AsyncClient, widget_key: str
) -> None:
    session_id, wallet = new_id(), new_wallet()
    created = ok(
        await http.post(
            "/api/sessions",
            json={"public_key": wallet},
            headers={**headers(session_id), **FROM_WIDGET},
        )
    )
    assert created == {"session_id": session_id, "title": "New chat"}
    # the key's requests find it: it is the widget app's
    await chat_and_wait(http, session_id, "first words", widget_key, "widget")
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}, headers=FROM_WIDGET))
    assert [s["session_id"] for s in listed] == [session_id]
    mine = await graphql(
        http, "query($s: ID!) { session(id: $s) { app } }", key=widget_key, s=session_id
    )
    assert mine["session"]["app"] == "widget"


async def test_a_listed_origin_alone_lists_its_apps_sessions_of_a_wallet(
    http: httpx.AsyncClient,
) -> None:
    """`portal` lists its origin but not `keyless_wallet_listing`: from its origin a
    keyless wallet listing is the portal's (the origin is the app); without the
    origin it is `default`'s, and never the portal's."""
    from_portal = {"Origin": "https://portal.example"}
    wallet = new_wallet()
    portal_session, default_session = new_id(), new_id()
    ok(
        await http.post(
            "/api/sessions",
            json={"public_key": wallet},
            headers={**headers(portal_session), **from_portal},
        )
    )
    ok(
        await http.post(
            "/api/sessions", json={"public_key": wallet}, headers=headers(default_session)
        )
    )
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}, headers=from_portal))
    assert [s["session_id"] for s in listed] == [portal_session]
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [default_session]


async def test_an_unlisted_origin_gets_nothing_of_the_app(
    http: httpx.AsyncClient, widget_key: str
) -> None:
    session_id, wallet = new_id(), new_wallet()
    sent = {**headers(session_id), "Origin": "https://elsewhere.example"}
    ok(await http.post("/api/sessions", json={"public_key": wallet}, headers=sent))
    # created in `default`, so the key's chat does not find it (it has a wallet: never claimed)
    assert_error(await chat(http, session_id, "hi", widget_key, "widget"), 404)
    refused = await http.post("/api/sessions", params={"app": "widget"}, headers=sent)
    assert_error(refused, 401)


async def test_keyless_wallet_listing_covers_only_the_apps_that_chose_it(
    http: httpx.AsyncClient, widget_key: str, alpha_key: str
) -> None:
    wallet = new_wallet()
    widget_session, alpha_session, default_session = new_id(), new_id(), new_id()
    await create_session(http, widget_session, widget_key, "widget", public_key=wallet)
    await create_session(http, alpha_session, alpha_key, "alpha", public_key=wallet)
    await create_session(http, default_session, public_key=wallet)
    keyless = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert {s["session_id"] for s in keyless} == {widget_session, default_session}
    assert all(set(s) == {"session_id", "title", "is_archived"} for s in keyless)
    # with a key, only that key's app
    for key, app, expected in (
        (alpha_key, "alpha", alpha_session),
        (widget_key, "widget", widget_session),
    ):
        keyed = ok(
            await http.get(
                "/api/sessions", params={"public_key": wallet, "app": app}, headers=headers(key=key)
            )
        )
        assert [s["session_id"] for s in keyed] == [expected]


async def test_an_empty_keyless_session_is_claimed_by_the_first_keyed_request(
    http: httpx.AsyncClient, widget_key: str, alpha_key: str
) -> None:
    session_id = new_id()
    await create_session(http, session_id)  # the client's createThread: no key, no app
    snapshot = await chat_and_wait(http, session_id, "now with the key", widget_key, "widget")
    assert snapshot["messages"][0]["content"] == "now with the key"
    owner = await graphql(
        http, "query($s: ID!) { session(id: $s) { app } }", key=widget_key, s=session_id
    )
    assert owner["session"]["app"] == "widget"
    # it is the widget's for good: another app's key does not find it
    assert_error(await chat(http, session_id, "mine now?", alpha_key, "alpha"), 404)
    # and the session id alone still reaches it (the bearer capability)
    assert (await state(http, session_id))["messages"][0]["content"] == "now with the key"


async def test_a_session_with_content_never_changes_app(
    http: httpx.AsyncClient, widget_key: str
) -> None:
    session_id = new_id()
    await chat_and_wait(http, session_id, "said without a key")
    assert_error(await chat(http, session_id, "and now with one", widget_key, "widget"), 404)
    bound = new_id()
    await create_session(http, bound, public_key=new_wallet())  # a wallet is content too
    assert_error(await chat(http, bound, "claim?", widget_key, "widget"), 404)
    assert [m["content"] for m in (await state(http, session_id))["messages"]] == [
        "said without a key",
        "You said: said without a key",
    ]


# -- 3. POST /api/system before the first chat ---------------------------------------


async def test_system_message_creates_the_session_and_is_a_notice(
    http: httpx.AsyncClient, widget_key: str
) -> None:
    session_id = new_id()
    text = "User connected wallet 0x742d35cc6634c0532925a3b844bc454e4438f44e"
    async with updates(http, session_id) as stream:
        response = await http.post(
            "/api/system",
            params={"message": text, "app": "widget"},
            headers=headers(session_id, widget_key),
        )
        [notice] = await stream.wait_for_type("system_notice")
    stored = ok(response)["res"]
    assert_legacy_message(stored)
    assert (stored["sender"], stored["content"]) == ("system", text)
    assert notice == {"type": "system_notice", "session_id": session_id, "message": text}
    events = ok(await http.get("/api/events", headers=headers(session_id, widget_key)))
    assert events == [{"SystemNotice": text}]
    found = await graphql(
        http,
        "query($s: ID!) { session(id: $s) { app systemEvents { kind payload } } }",
        key=widget_key,
        s=session_id,
    )
    assert found["session"]["app"] == "widget"
    assert [e["payload"]["message"] for e in found["session"]["systemEvents"]] == [text]
    # the first chat continues the same session
    snapshot = await chat_and_wait(http, session_id, "hi", widget_key, "widget")
    assert [m["sender"] for m in snapshot["messages"]] == ["system", "user", "agent"]


async def test_bad_system_message_creates_nothing(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    too_long = "x" * 4_001
    assert_error(
        await http.post("/api/system", params={"message": too_long}, headers=headers(session_id)),
        400,
    )
    assert_error(await http.get(f"/api/sessions/{session_id}", headers=headers(session_id)), 404)


# -- 4. opaque session ids ------------------------------------------------------------


async def test_opaque_session_ids_work_everywhere(http: httpx.AsyncClient, widget_key: str) -> None:
    session_id, wallet = f"default-session-{uuid.uuid4().hex[:8]}", new_wallet()
    async with updates(http, session_id) as stream:
        response = await chat(
            http, session_id, "hello from an opaque id", widget_key, "widget", public_key=wallet
        )
        ok(response)
        await stream.wait_for_type("title_changed")
    assert {e["session_id"] for e in stream.events} == {session_id}
    snapshot, _ = await until_idle(http, session_id, widget_key, "widget")
    assert snapshot["messages"][-1]["content"] == "You said: hello from an opaque id"
    sent = headers(session_id, widget_key)
    got = ok(await http.get(f"/api/sessions/{session_id}", params={"app": "widget"}, headers=sent))
    assert got["session_id"] == session_id
    listed = ok(
        await http.get(
            "/api/sessions", params={"public_key": wallet, "app": "widget"}, headers=sent
        )
    )
    assert [s["session_id"] for s in listed] == [session_id]
    # GraphQL reaches it by a stable UUID and exposes the text id
    found = await graphql(
        http,
        "query($w: String!) { sessions(publicKey: $w) { edges { node { id legacyId } } } }",
        key=widget_key,
        w=wallet,
    )
    [node] = [edge["node"] for edge in found["sessions"]["edges"]]
    assert node["legacyId"] == session_id
    assert uuid.UUID(node["id"]).version == 5
    again = await graphql(
        http, "query($s: ID!) { session(id: $s) { legacyId } }", key=widget_key, s=node["id"]
    )
    assert again["session"]["legacyId"] == session_id


async def test_a_uuid_session_id_has_no_legacy_id(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    found = await graphql(http, "query($s: ID!) { session(id: $s) { id legacyId } }", s=session_id)
    assert found["session"] == {"id": session_id, "legacyId": None}


@pytest.mark.parametrize(
    "bad",
    ["has space", "x" * 129, "tab\tinside", "caf\u00e9".encode(), ""],
    ids=["space", "too-long", "control-character", "non-ascii", "empty"],
)
async def test_malformed_session_ids_are_refused_and_store_nothing(
    http: httpx.AsyncClient, bad: str | bytes
) -> None:
    wallet = new_wallet()
    raw = bad if isinstance(bad, bytes) else bad.encode("latin-1")
    sent = [(b"X-Session-Id", raw)]
    for response in (
        await http.post(
            "/api/chat", params={"public_key": wallet}, json={"message": "hi"}, headers=sent
        ),
        await http.post("/api/sessions", json={"public_key": wallet}, headers=sent),
        await http.get("/api/state", params={"client_id": "cli-1"}, headers=sent),
        await http.post("/api/system", params={"message": "hi"}, headers=sent),
        await http.post("/api/interrupt", headers=sent),
        await http.get("/api/events", headers=sent),
        await http.get("/api/updates", headers=sent),
    ):
        assert "X-Session-Id" in assert_error(response, 400), response.request.url
    # nothing was created for the wallet either way
    assert ok(await http.get("/api/sessions", params={"public_key": wallet})) == []


async def test_the_longest_opaque_id_is_accepted(http: httpx.AsyncClient) -> None:
    longest = "k" * 128
    await chat_and_wait(http, longest, "hi")
    found = ok(await http.get("/api/state", headers={"X-Session-Id": longest}))
    assert [m["content"] for m in found["messages"]] == ["hi", "You said: hi"]


# -- 5. deleting a thread that was never sent ------------------------------------------


async def test_deleting_an_unknown_session_is_idempotent(
    http: httpx.AsyncClient, widget_key: str, alpha_key: str
) -> None:
    never_sent = new_id()
    assert ok(await http.delete(f"/api/sessions/{never_sent}")) == {"deleted": False}
    session_id = new_id()
    await create_session(http, session_id, widget_key, "widget")
    # another app's key never changes it: 404, and the session stays
    refused = await http.delete(
        f"/api/sessions/{session_id}", params={"app": "alpha"}, headers=headers(key=alpha_key)
    )
    assert_error(refused, 404)
    deleted = await http.delete(f"/api/sessions/{session_id}", headers=FROM_WIDGET)
    assert ok(deleted) == {"deleted": True}
    again = await http.delete(f"/api/sessions/{session_id}", headers=FROM_WIDGET)
    assert ok(again) == {"deleted": False}


def test_an_origin_is_listed_by_one_app_only(tmp_path: Path) -> None:
    from settings import SettingsError, load_apps

    config = tmp_path / "apps.toml"
    config.write_text(
        '[apps.one]\norigins = ["https://x.example"]\n[apps.two]\norigins = ["https://x.example"]\n'
    )
    with pytest.raises(SettingsError, match=r"x\.example"):
        load_apps(config)
    config.write_text('[apps.one]\norigins = ["https://x.example/path"]\n')
    with pytest.raises(SettingsError, match="not an origin"):
        load_apps(config)
