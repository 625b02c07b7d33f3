"""Invalid app keys cost little: a client address that keeps sending unknown keys is
refused with 429 before each one costs a database query, while valid keys keep
working from the same address.

Most tests call the app in-process, where each request's client address can be
chosen and the key cache's query counter read; one test calls a real server
process over HTTP and WebSockets.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from runtime import keys
from runtime.auth_throttle import AuthThrottle
from runtime.errors import RateLimited
from server import create_app
from settings import Settings
from tests.conftest import new_id, started
from tests.live import LEGACY_WS, TRANSPORT_WS
from tests.processes import ServerProcess

pytestmark = pytest.mark.processes


LIMIT = Settings().auth_failures_per_minute  # the default: what a deployment gets
MODELS = "{ models }"


def bogus_key() -> str:
    return f"cfb_{new_id()[:8]}_{new_id().replace('-', '')}"


@asynccontextmanager
async def from_address(app: Starlette, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests arrive from `host` (the ASGI scope's client)."""
    transport = httpx.ASGITransport(app=app, client=(host, 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://confab.test") as http:
        yield http


def key_queries(app: Starlette) -> int:
    queries: int = app.state.runtime.apps.verified_keys.stats["queries"]
    return queries


async def models(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.get(
        "/api/control/models", params={"app": "alpha"}, headers={"X-API-Key": key}
    )


async def exhaust(http: httpx.AsyncClient) -> None:
    """Use up the address's failures for this minute, each one a plain 401."""
    for _ in range(LIMIT):
        response = await models(http, bogus_key())
        assert response.status_code == 401, response.text


async def test_repeated_bad_keys_are_refused_before_they_cost_a_query(app: Starlette) -> None:
    async with from_address(app, "203.0.113.7") as guesser:
        before = key_queries(app)
        await exhaust(guesser)
        assert key_queries(app) == before + LIMIT  # each unknown key was looked up once

        refused = [await models(guesser, bogus_key()) for _ in range(5)]
        assert key_queries(app) == before + LIMIT  # ... and these were not

    for response in refused:
        assert response.status_code == 429, response.text
        assert response.json()["error"]
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60

    # Another address is not affected.
    async with from_address(app, "198.51.100.9") as other:
        assert (await models(other, bogus_key())).status_code == 401


async def test_a_valid_key_keeps_working_from_a_throttled_address(
    app: Starlette, alpha_key: str
) -> None:
    async with from_address(app, "203.0.113.8") as shared:
        assert (await models(shared, alpha_key)).status_code == 200
        await exhaust(shared)
        assert (await models(shared, bogus_key())).status_code == 429
        assert (await models(shared, alpha_key)).status_code == 200
        chat = await shared.post(
            "/api/chat",
            params={"message": "still here", "app": "alpha"},
            headers={"X-Session-Id": new_id(), "AOMI-APP-KEY": alpha_key},
        )
        assert chat.status_code == 200, chat.text


@pytest.fixture
async def uncached_app(settings: Settings) -> AsyncIterator[Starlette]:
    """Verified keys are never trusted without a query (a zero cache time)."""
    application = create_app(settings.with_overrides(key_cache_ttl=0.0))
    async with started(application):
        yield application


async def test_a_key_verified_before_skips_the_throttle_when_its_cache_entry_is_stale(
    uncached_app: Starlette,
) -> None:
    clear, _ = await keys.create_key(["alpha"], "tests")
    async with from_address(uncached_app, "203.0.113.9") as shared:
        assert (await models(shared, clear)).status_code == 200
        await exhaust(shared)
        assert (await models(shared, bogus_key())).status_code == 429
        before = key_queries(uncached_app)
        assert (await models(shared, clear)).status_code == 200
        assert key_queries(uncached_app) == before + 1  # re-verified, not refused


async def test_graphql_answers_rate_limited_with_status_429(app: Starlette) -> None:
    async with from_address(app, "203.0.113.10") as guesser:
        for _ in range(LIMIT):
            response = await guesser.post(
                "/graphql", json={"query": MODELS}, headers={"AOMI-APP-KEY": bogus_key()}
            )
            assert response.status_code == 200
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        response = await guesser.post(
            "/graphql", json={"query": MODELS}, headers={"AOMI-APP-KEY": bogus_key()}
        )
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 60
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == int(response.headers["retry-after"])


async def test_one_bad_key_costs_one_query_per_cache_period_whoever_sends_it(
    settings: Settings,
) -> None:
    application = create_app(settings.with_overrides(key_cache_ttl=300.0))
    async with started(application):
        bad = bogus_key()
        before = key_queries(application)
        for n in range(5):
            async with from_address(application, f"192.0.2.{n + 1}") as client:
                assert (await models(client, bad)).status_code == 401
        assert key_queries(application) == before + 1


# -- the throttle itself, on an explicit clock -----------------------------------------------


def test_the_window_closes_a_minute_after_the_first_failure() -> None:
    throttle = AuthThrottle(per_minute=3)
    for t in (100.0, 110.0, 120.0):
        throttle.check("192.0.2.1", t)
        throttle.failed("192.0.2.1", t)
    with pytest.raises(RateLimited) as refused:
        throttle.check("192.0.2.1", 130.0)
    assert refused.value.retry_after == pytest.approx(30.0)
    assert refused.value.retry_after_seconds == 30
    throttle.check("192.0.2.1", 160.0)  # the window has closed: checked again
    throttle.failed("192.0.2.1", 160.0)
    throttle.check("192.0.2.1", 161.0)  # a fresh window with one failure


def test_tracked_addresses_are_bounded() -> None:
    throttle = AuthThrottle(per_minute=1, capacity=3)
    for n in range(5):
        throttle.failed(f"192.0.2.{n}", 0.0)
    assert len(throttle) == 3
    throttle.check("192.0.2.0", 1.0)  # forgotten first: the least recently failing
    with pytest.raises(RateLimited):
        throttle.check("192.0.2.4", 1.0)


def test_an_ipv6_host_is_counted_by_its_64_prefix() -> None:
    throttle = AuthThrottle(per_minute=2)
    throttle.failed("2001:db8:1:2::1", 0.0)
    throttle.failed("2001:db8:1:2::ffff", 0.0)
    with pytest.raises(RateLimited):
        throttle.check("2001:db8:1:2:abcd::9", 1.0)
    throttle.check("2001:db8:1:3::1", 1.0)  # another /64
    throttle.failed("::ffff:192.0.2.50", 0.0)  # IPv4 on a dual-stack socket: its own
    throttle.check("::ffff:192.0.2.51", 1.0)


def test_a_limit_of_zero_turns_the_throttle_off() -> None:
    throttle = AuthThrottle(per_minute=0)
    for _ in range(100):
        throttle.failed("192.0.2.1", 0.0)
    throttle.check("192.0.2.1", 1.0)


# -- a real server process ----------------------------------------------------------------


async def test_a_real_server_throttles_http_and_websocket_guesses(
    server: ServerProcess, alpha_cli_key: str
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert (await models(http, alpha_cli_key)).status_code == 200  # known here now
        statuses = [(await models(http, bogus_key())).status_code for _ in range(LIMIT + 1)]
        # Earlier tests of this module may have spent some of this address's failures.
        assert statuses[-1] == 429, statuses
        assert set(statuses) <= {401, 429}
        refused = await models(http, bogus_key())
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert (await models(http, alpha_cli_key)).status_code == 200

    # graphql-transport-ws: refused at connection_init, like any bad key (4403).
    async with connect(
        f"ws://127.0.0.1:{server.port}/graphql", subprotocols=[Subprotocol(TRANSPORT_WS)]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"appKey": bogus_key()}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403

    # graphql-ws: the `connection_error` payload says why and when to retry.
    async with connect(
        f"ws://127.0.0.1:{server.port}/graphql", subprotocols=[Subprotocol(LEGACY_WS)]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"appKey": bogus_key()}}))
        answer: dict[str, Any] = json.loads(await ws.recv())
    assert answer["type"] == "connection_error"
    assert answer["payload"]["code"] == "RATE_LIMITED"
    assert math.isfinite(answer["payload"]["retryAfter"])
    assert answer["payload"]["retryAfter"] >= 1

    # A valid key still connects from the same address.
    async with connect(
        f"ws://127.0.0.1:{server.port}/graphql", subprotocols=[Subprotocol(TRANSPORT_WS)]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"appKey": alpha_cli_key}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"


async def test_the_limit_is_the_setting(settings: Settings) -> None:
    application = create_app(settings.with_overrides(auth_failures_per_minute=3))
    async with started(application), from_address(application, "203.0.113.30") as http:
        statuses = [(await models(http, bogus_key())).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
