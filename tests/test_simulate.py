"""`POST /api/simulate` over HTTP: 501 for an app that names no simulator; the
app's simulator's result as `{"result": ...}`; 400 for bad requests and the
simulator's refusals; 502 (a generic reason, details logged) when it fails; 504
when it takes too long."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from runtime import keys
from runtime.simulation import Simulators
from server import create_app
from settings import AppConfig, Settings
from tests.conftest import new_id, started
from tests.rest_client import assert_error, create_session, headers, ok
from tests.sample_simulator import REJECTED_ADDRESS
from tests.vault_support import vault_settings

SENDER = "0x742d35Cc6634C0532925a3b844Bc454e4438f44e"
TRANSFER = {"to": "0x0000000000000000000000000000000000000001", "value": "0x1", "data": "0x"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return vault_settings(settings, tmp_path)


@pytest.fixture
async def vault_key(app: Starlette) -> str:
    return (await keys.create_key(["vault"], "tests"))[0]


def body(*transactions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "transactions": list(transactions or [TRANSFER]),
        "from": SENDER,
        "chain_id": 1,
        **extra,
    }


async def simulate(
    http: httpx.AsyncClient,
    payload: Any,
    session_id: str | None = None,
    key: str | None = None,
    app: str | None = None,
) -> httpx.Response:
    return await http.post(
        "/api/simulate",
        params={"app": app} if app else {},
        json=payload,
        headers=headers(session_id or new_id(), key),
    )


async def test_an_app_without_a_simulator_answers_501(client: httpx.AsyncClient) -> None:
    reason = assert_error(await simulate(client, body()), 501)
    assert "does not simulate transactions" in reason
    assert "simulator" in reason


async def test_the_apps_simulator_answers(client: httpx.AsyncClient, vault_key: str) -> None:
    session_id = new_id()
    await create_session(client, session_id, vault_key, "vault")
    data = {**TRANSFER, "data": "0xa9059cbb"}
    answer = ok(await simulate(client, body(TRANSFER, data), session_id, vault_key, "vault"))
    assert answer == {
        "result": {
            "success": True,
            "chain_id": 1,
            "from": SENDER,
            "gas_used": [21_000, 21_064],
            "total_gas": 42_064,
            "session_id": session_id,
            "client_id": None,
        }
    }
    # The session id alone acts in the session's app (the legacy capability).
    assert ok(await simulate(client, body(), session_id))["result"]["success"] is True
    # An unknown session: the caller's app.
    assert ok(await simulate(client, body(), new_id(), vault_key, "vault"))["result"]["success"]
    # Optional sender and chain.
    bare = {"transactions": [TRANSFER]}
    assert ok(await simulate(client, bare, session_id))["result"]["chain_id"] is None


async def test_a_refusal_by_the_simulator_is_a_400_with_its_reason(
    client: httpx.AsyncClient, vault_key: str
) -> None:
    refused = {**TRANSFER, "to": REJECTED_ADDRESS}
    response = await simulate(client, body(refused), key=vault_key, app="vault")
    assert assert_error(response, 400) == "transfers to the dead address are not simulated"


async def test_a_failing_simulator_is_a_502_without_details(
    client: httpx.AsyncClient, vault_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    broken = {**TRANSFER, "data": "0xfail"}
    reason = assert_error(await simulate(client, body(broken), key=vault_key, app="vault"), 502)
    assert "connection to node refused" not in reason
    assert "connection to node refused" in caplog.text  # the details stay in the log


async def test_a_slow_simulator_is_a_504(settings: Settings) -> None:
    application = create_app(settings.with_overrides(simulator_timeout=0.2))
    async with started(application):
        key = (await keys.create_key(["vault"], "tests"))[0]
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            slow = {**TRANSFER, "data": "0xslow"}
            reason = assert_error(await simulate(http, body(slow), key=key, app="vault"), 504)
            assert "0.2s" in reason


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (None, "JSON"),
        ({"from": SENDER, "chain_id": 1}, "transactions"),
        (body(transactions=[]), "transactions"),
        (body(transactions="0xdeadbeef"), "transactions"),
        (body(transactions=[TRANSFER] * 33), "at most 32"),
        (body(transactions=[TRANSFER, "0x00"]), "transactions[1]"),
        (body(**{"from": 42}), "from"),
        (body(**{"from": ""}), "from"),
        (body(chain_id="1"), "chain_id"),
        (body(chain_id=True), "chain_id"),
        (body(chain_id=0), "chain_id"),
    ],
)
async def test_bad_requests_are_400(
    client: httpx.AsyncClient, vault_key: str, payload: Any, names: str
) -> None:
    response = await simulate(client, payload, key=vault_key, app="vault")
    assert names in assert_error(response, 400)


async def test_the_session_header_is_required(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/simulate", json=body())
    assert "X-Session-Id" in assert_error(response, 400)


async def test_another_apps_session_is_not_found(
    client: httpx.AsyncClient, vault_key: str, alpha_key: str
) -> None:
    session_id = new_id()
    await create_session(client, session_id, vault_key, "vault")
    assert_error(await simulate(client, body(), session_id, alpha_key, "alpha"), 404)


def test_a_simulator_that_cannot_be_loaded_stops_the_start() -> None:
    for path, problem in (
        ("tests.no_such_module:simulate", "cannot be imported"),
        ("tests.sample_simulator:nothing", "cannot be imported"),
        ("tests.sample_simulator:REJECTED_ADDRESS", "not an async function"),
    ):
        app = AppConfig(name="x", display_name="X", simulator=path)
        with pytest.raises(ValueError, match=problem):
            Simulators({"x": app}, 1.0)


@pytest.fixture(autouse=True)
def _log_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
