"""The REST compatibility layer, black box, from the contract (shared/spec/rest-compat.md):
control endpoints, health, keys and app isolation, CORS.

One real server process (PostgreSQL, Redis) called over HTTP the way a legacy client
calls it: the message in the query string, the session id only in `X-Session-Id`,
the app key in `AOMI-APP-KEY` or `X-API-Key`, the app chosen with `?app=` or
`?namespace=`.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.conftest import new_id, new_wallet
from tests.live import cli
from tests.rest_client import (
    CORS_ORIGIN,
    INTERRUPTION,
    assert_error,
    chat,
    chat_and_wait,
    create_session,
    graphql,
    headers,
    ok,
    senders,
    state,
    until_idle,
    updates,
    updates_status,
)

# -- control ------------------------------------------------------------------------------


async def test_control_models_lists_the_apps_models(
    http: httpx.AsyncClient, alpha_cli_key: str
) -> None:
    assert ok(await http.get("/api/control/models")) == ["builtin"]
    alpha = await http.get(
        "/api/control/models", params={"app": "alpha"}, headers=headers(key=alpha_cli_key)
    )
    assert ok(alpha) == ["builtin", "builtin-large"]


@pytest.mark.parametrize("existing", [True, False], ids=["existing-session", "new-session"])
async def test_control_model_selects_the_sessions_model(
    http: httpx.AsyncClient, alpha_cli_key: str, existing: bool
) -> None:
    """The model is chosen for the session, which is created first if it is new
    (`created` says which)."""
    session_id, key = new_id(), alpha_cli_key
    if existing:
        await create_session(http, session_id, key=key, app="alpha")
    response = await http.post(
        "/api/control/model",
        params={"rig": "builtin-large", "app": "alpha"},
        headers=headers(session_id, key),
    )
    assert ok(response) == {
        "success": True,
        "rig": "builtin-large",
        "baml": "builtin-large",
        "created": not existing,
    }
    chosen = await graphql(
        http, "query($s: ID!) { session(id: $s) { app model } }", key=key, s=session_id
    )
    assert chosen["session"] == {"app": "alpha", "model": "builtin-large"}


@pytest.mark.parametrize("rig", ["gpt-9", "builtin-large"], ids=["unknown", "not-this-apps"])
async def test_control_model_refuses_an_unknown_rig(http: httpx.AsyncClient, rig: str) -> None:
    session_id = new_id()
    await create_session(http, session_id)  # the default app has only "builtin"
    response = await http.post(
        "/api/control/model", params={"rig": rig}, headers=headers(session_id)
    )
    assert_error(response, 400)


async def test_control_model_needs_the_apps_key(
    http: httpx.AsyncClient, alpha_cli_key: str
) -> None:
    session_id = new_id()
    await create_session(http, session_id, key=alpha_cli_key, app="alpha")
    response = await http.post(
        "/api/control/model",
        params={"rig": "builtin-large", "app": "alpha"},
        headers=headers(session_id),
    )
    assert_error(response, 401)


async def test_control_apps(http: httpx.AsyncClient, alpha_cli_key: str) -> None:
    anonymous = ok(await http.get("/api/control/apps"))
    assert "default" in anonymous
    assert not {"alpha", "beta", "gamma"} & set(anonymous)
    with_key = ok(await http.get("/api/control/apps", headers=headers(key=alpha_cli_key)))
    assert "alpha" in with_key
    assert not {"beta", "gamma"} & set(with_key)


async def test_health(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.text.strip() == "OK"


# -- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize("selector", ["app", "namespace"])
async def test_a_non_default_app_needs_a_key(http: httpx.AsyncClient, selector: str) -> None:
    session_id = new_id()
    response = await http.post(
        "/api/chat", params={"message": "hi", selector: "alpha"}, headers=headers(session_id)
    )
    assert_error(response, 401)
    assert_error(await http.get(f"/api/sessions/{session_id}"), 404)  # nothing was created


@pytest.mark.parametrize("app", ["alpha", None], ids=["alpha", "no-app"])
async def test_an_unknown_key_is_401(http: httpx.AsyncClient, app: str | None) -> None:
    session_id = new_id()
    unknown = "cfb_" + new_id().replace("-", "")
    assert_error(await chat(http, session_id, "hi", key=unknown, app=app), 401)


@pytest.mark.parametrize("selector", ["app", "namespace"])
async def test_a_key_for_another_app_is_403(
    http: httpx.AsyncClient, beta_cli_key: str, selector: str
) -> None:
    session_id = new_id()
    response = await http.post(
        "/api/chat",
        params={"message": "hi", selector: "alpha"},
        headers=headers(session_id, beta_cli_key),
    )
    assert_error(response, 403)


@pytest.mark.parametrize("key_header", ["AOMI-APP-KEY", "X-API-Key", "aomi-app-key", "x-api-key"])
@pytest.mark.parametrize("selector", ["app", "namespace"])
async def test_both_key_headers_and_both_selectors_work(
    http: httpx.AsyncClient,
    alpha_cli_key: str,
    beta_cli_key: str,
    key_header: str,
    selector: str,
) -> None:
    session_id = new_id()
    sent = headers(session_id, alpha_cli_key, key_header)
    response = await http.post(
        "/api/chat", params={"message": "hello alpha", selector: "alpha"}, headers=sent
    )
    assert ok(response)["messages"][0]["content"] == "hello alpha"
    # the session belongs to alpha: its key sees it, another app's key does not
    params = {selector: "alpha"}
    fetched = ok(await http.get(f"/api/sessions/{session_id}", params=params, headers=sent))
    assert fetched["session_id"] == session_id
    assert_error(
        await http.get(
            f"/api/sessions/{session_id}",
            params={"app": "beta"},
            headers=headers(session_id, beta_cli_key),
        ),
        404,
    )
    await until_idle(http, session_id, alpha_cli_key, "alpha")


CROSS_APP_OPERATIONS = [
    "state",
    "interrupt",
    "events",
    "get",
    "rename",
    "archive",
    "unarchive",
    "delete",
    "system",
    "chat",
    "control-model",
    "updates",
]


async def cross_app_request(
    http: httpx.AsyncClient, operation: str, session_id: str, key: str
) -> httpx.Response:
    """One request for `session_id` carrying a key for app beta (`?app=beta`)."""
    sent, params = headers(session_id, key), {"app": "beta"}
    path = f"/api/sessions/{session_id}"
    if operation == "state":
        return await http.get("/api/state", params=params, headers=sent)
    if operation == "interrupt":
        return await http.post("/api/interrupt", params=params, headers=sent)
    if operation == "events":
        return await http.get("/api/events", params=params, headers=sent)
    if operation == "get":
        return await http.get(path, params=params, headers=sent)
    if operation == "rename":
        return await http.patch(path, params=params, json={"title": "Hijacked"}, headers=sent)
    if operation in ("archive", "unarchive"):
        return await http.post(f"{path}/{operation}", params=params, headers=sent)
    if operation == "delete":
        return await http.delete(path, params=params, headers=sent)
    if operation == "system":
        return await http.post(
            "/api/system", params={"message": "injected", **params}, headers=sent
        )
    if operation == "chat":
        return await chat(http, session_id, "injected too", key, "beta")
    if operation == "control-model":
        return await http.post(
            "/api/control/model", params={"rig": "builtin", **params}, headers=sent
        )
    assert operation == "updates"
    return await updates_status(http, sent, params)


@pytest.mark.parametrize("operation", CROSS_APP_OPERATIONS)
async def test_another_apps_key_gets_404_and_changes_nothing(
    http: httpx.AsyncClient, alpha_cli_key: str, beta_cli_key: str, operation: str
) -> None:
    session_id = new_id()
    alpha = headers(session_id, alpha_cli_key)
    if operation == "unarchive":
        await create_session(http, session_id, alpha_cli_key, "alpha")
        ok(
            await http.post(
                f"/api/sessions/{session_id}/archive", params={"app": "alpha"}, headers=alpha
            )
        )
    ok(await chat(http, session_id, "/slow 1 alpha secret", alpha_cli_key, "alpha"))

    response = await cross_app_request(http, operation, session_id, beta_cli_key)
    assert_error(response, 404)
    assert "secret" not in response.text

    # nothing changed: the turn ran to its end, same messages, title, archive flag
    done, events = await until_idle(http, session_id, alpha_cli_key, "alpha")
    assert [m["content"] for m in done["messages"]] == [
        "/slow 1 alpha secret",
        "You said: alpha secret",
    ]
    assert done["title"] == "Alpha secret"
    assert INTERRUPTION not in events
    fetched = ok(
        await http.get(f"/api/sessions/{session_id}", params={"app": "alpha"}, headers=alpha)
    )
    assert fetched["is_archived"] is (operation == "unarchive")


async def test_another_apps_key_does_not_list_a_session(
    http: httpx.AsyncClient, alpha_cli_key: str, beta_cli_key: str
) -> None:
    session_id, wallet = new_id(), new_wallet()
    await create_session(http, session_id, alpha_cli_key, "alpha", public_key=wallet)
    listed = ok(
        await http.get(
            "/api/sessions",
            params={"public_key": wallet, "app": "beta"},
            headers=headers(key=beta_cli_key),
        )
    )
    assert listed == []
    anonymous = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert anonymous == []  # the default app does not see it either
    in_alpha = ok(
        await http.get(
            "/api/sessions",
            params={"public_key": wallet, "app": "alpha"},
            headers=headers(key=alpha_cli_key),
        )
    )
    assert [s["session_id"] for s in in_alpha] == [session_id]


@pytest.mark.parametrize("app", ["alpha", "gamma"])
async def test_the_session_id_alone_reads_state(
    http: httpx.AsyncClient, alpha_cli_key: str, gamma_cli_key: str, app: str
) -> None:
    key = {"alpha": alpha_cli_key, "gamma": gamma_cli_key}[app]
    session_id = new_id()
    await chat_and_wait(http, session_id, f"hello from {app}", key, app)
    snapshot = await state(http, session_id)  # no key, no app: the session header alone
    assert [m["content"] for m in snapshot["messages"]] == [
        f"hello from {app}",
        f"You said: hello from {app}",
    ]
    assert snapshot["title"] == f"Hello from {app}"


async def test_the_session_id_alone_works_on_interrupt_system_and_updates(
    http: httpx.AsyncClient, alpha_cli_key: str
) -> None:
    session_id = new_id()
    await chat_and_wait(http, session_id, "keyless follow-ups", alpha_cli_key, "alpha")
    sent = headers(session_id)
    assert ok(await http.post("/api/interrupt", headers=sent))["is_processing"] is False
    async with updates(http, session_id) as stream:
        message = json.dumps({"type": "keyless_ping", "n": 1})
        assert "res" in ok(
            await http.post("/api/system", params={"message": message}, headers=sent)
        )
        [event] = await stream.wait_for_type("keyless_ping")
    assert event["session_id"] == session_id
    snapshot = await state(http, session_id, alpha_cli_key, "alpha")
    assert "system" in senders(snapshot)


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("POST", "/api/chat", {"message": "hi"}),
        ("POST", "/api/sessions", {}),
        ("GET", "/api/sessions", {"public_key": "0x" + "ab" * 20}),
        ("GET", "/api/control/models", {}),
    ],
    ids=["chat", "create", "list", "models"],
)
async def test_every_endpoint_checks_the_key(
    http: httpx.AsyncClient,
    beta_cli_key: str,
    method: str,
    path: str,
    params: dict[str, str],
) -> None:
    session_id = new_id()
    for_alpha = {**params, "app": "alpha"}
    no_key = await http.request(method, path, params=for_alpha, headers=headers(session_id))
    assert_error(no_key, 401)
    unknown = "cfb_" + new_id().replace("-", "")
    bad_key = await http.request(
        method, path, params=for_alpha, headers=headers(session_id, unknown, "X-API-Key")
    )
    assert_error(bad_key, 401)
    wrong_app = await http.request(
        method, path, params=for_alpha, headers=headers(session_id, beta_cli_key)
    )
    assert_error(wrong_app, 403)


async def test_a_revoked_key_is_401(http: httpx.AsyncClient, live_env: dict[str, str]) -> None:
    key = cli(live_env, "keys", "create", "--app", "alpha", "--label", "to-revoke")
    session_id = new_id()
    ok(await chat(http, session_id, "before revocation", key, "alpha"))
    await until_idle(http, session_id, key, "alpha")
    prefix = "_".join(key.split("_")[:2])
    cli(live_env, "keys", "revoke", prefix)
    for _ in range(50):  # verified keys may be trusted for a couple of seconds
        response = await chat(http, session_id, "after revocation", key, "alpha")
        if response.status_code != 200:
            break
        await asyncio.sleep(0.2)
    assert_error(response, 401)
    assert_error(
        await http.get("/api/control/models", params={"app": "alpha"}, headers=headers(key=key)),
        401,
    )


# -- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "request_headers"),
    [
        ("POST", "/api/chat", "X-Session-Id"),
        ("GET", "/api/state", "x-session-id"),
        ("GET", "/api/updates", "X-Session-Id, Last-Event-ID, Accept"),
        ("POST", "/api/sessions", "X-Session-Id, Content-Type, AOMI-APP-KEY"),
        ("PATCH", "/api/sessions/00000000-0000-4000-8000-000000000000", "Content-Type, X-API-Key"),
        ("DELETE", "/api/sessions/00000000-0000-4000-8000-000000000000", "X-Session-Id"),
    ],
)
async def test_cors_preflight_is_allowed(
    http: httpx.AsyncClient, method: str, path: str, request_headers: str
) -> None:
    response = await http.options(
        path,
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": request_headers,
        },
    )
    assert response.status_code in (200, 204), (response.status_code, response.text)
    assert response.headers.get("access-control-allow-origin") in ("*", CORS_ORIGIN)
    methods = response.headers.get("access-control-allow-methods", "").upper()
    assert methods == "*" or method in [m.strip() for m in methods.split(",")], methods
    allowed = response.headers.get("access-control-allow-headers", "").lower()
    allowed_list = [h.strip() for h in allowed.split(",")]
    for wanted in request_headers.lower().split(","):
        assert allowed == "*" or wanted.strip() in allowed_list, allowed


async def test_cors_headers_on_a_real_request(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    response = await http.get("/api/state", headers={**headers(session_id), "Origin": CORS_ORIGIN})
    assert response.status_code == 200
    assert response.headers.get("access-control-allow-origin") in ("*", CORS_ORIGIN)
