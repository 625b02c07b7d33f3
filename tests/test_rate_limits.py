"""Rate limits per app and per client, counted in Redis across two replicas.

A client is its peer address: each test speaks from its own loopback addresses
(127.x.y.z all reach the server on Linux), so clients are told apart as they
would be in production, and no test counts against another's window. The servers
use their own Redis database number.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from settings import SettingsError, load_apps
from tests.conftest import new_id, replica_pair, started
from tests.processes import ServerProcess
from tests.rest_client import assert_error, chat, headers, ok, until_idle, updates

REDIS_DB = 11  # this module's own


@pytest.fixture(scope="module")
def limited_env(live_env: dict[str, str]) -> dict[str, str]:
    """The servers' Redis is this module's own database, emptied first (so no
    window of an earlier run counts)."""
    import redis

    url = f"{live_env['CONFAB_EVENT_BUS'].rsplit('/', 1)[0]}/{REDIS_DB}"
    with redis.Redis.from_url(url) as own:
        own.flushdb()
    return {**live_env, "CONFAB_EVENT_BUS": url}


@pytest.fixture(scope="module")
def pair(
    limited_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    logs = tmp_path_factory.mktemp("limits")
    first = ServerProcess(limited_env, logs / "a.log")
    try:
        first.wait_ready()  # the first one syncs this module's apps
        with replica_pair(limited_env, logs) as servers:
            yield servers
    finally:
        first.stop()


@pytest.fixture(scope="module")
def limited_key(limited_env: dict[str, str], pair: tuple[ServerProcess, ServerProcess]) -> str:
    from tests.live import cli

    return cli(limited_env, "keys", "create", "--app", "limited")


@pytest.fixture(scope="module")
def thrifty_key(limited_env: dict[str, str], pair: tuple[ServerProcess, ServerProcess]) -> str:
    from tests.live import cli

    return cli(limited_env, "keys", "create", "--app", "thrifty")


@pytest.fixture(scope="module")
def crowded_key(limited_env: dict[str, str], pair: tuple[ServerProcess, ServerProcess]) -> str:
    from tests.live import cli

    return cli(limited_env, "keys", "create", "--app", "crowded")


def _address() -> str:
    """A loopback address no other test (or earlier run this minute) speaks from."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


@asynccontextmanager
async def client_at(server: ServerProcess, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=30) as http:
        yield http


def _app(app: str, key: str) -> tuple[dict[str, str], dict[str, str]]:
    return {"app": app}, headers(key=key)


async def test_a_client_over_its_limit_is_refused_on_every_replica(
    pair: tuple[ServerProcess, ServerProcess], limited_key: str
) -> None:
    params, sent = _app("limited", limited_key)
    me, other = _address(), _address()
    async with (
        client_at(pair[0], me) as on_a,
        client_at(pair[1], me) as on_b,
        client_at(pair[0], other) as someone_else,
    ):
        for http in (on_a, on_b, on_a, on_b, on_a, on_b, on_a, on_b):  # 8 a minute, shared
            ok(await http.get("/api/control/models", params=params, headers=sent))
        for http in (on_a, on_b):
            refused = await http.get("/api/control/models", params=params, headers=sent)
            reason = assert_error(refused, 429)
            assert "requests per minute" in reason
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # another client of the same app, and the same client in another app, go on
        ok(await someone_else.get("/api/control/models", params=params, headers=sent))
        ok(await on_a.get("/api/control/models"))


async def test_graphql_answers_rate_limited_with_the_retry_time(
    pair: tuple[ServerProcess, ServerProcess], limited_key: str
) -> None:
    query = {"query": "{ models }"}
    sent = {**headers(key=limited_key), "X-Confab-App": "limited"}
    async with client_at(pair[0], _address()) as http:
        for _ in range(8):
            assert "errors" not in ok(await http.post("/graphql", json=query, headers=sent))
        refused = await http.post("/graphql", json=query, headers=sent)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] >= 1


async def test_each_websocket_operation_counts(
    pair: tuple[ServerProcess, ServerProcess], limited_key: str
) -> None:
    ws_url = pair[1].url.replace("http://", "ws://") + "/graphql"
    outcomes: list[dict[str, Any]] = []
    async with websockets.connect(
        ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as socket:
        await socket.send(
            json.dumps(
                {"type": "connection_init", "payload": {"appKey": limited_key, "app": "limited"}}
            )
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        for number in range(9):
            await socket.send(
                json.dumps(
                    {"id": str(number), "type": "subscribe", "payload": {"query": "{ models }"}}
                )
            )
            while True:
                message = json.loads(await socket.recv())
                if message["type"] in ("next", "error"):
                    outcomes.append(message)
                if message["type"] in ("complete", "error"):
                    break
    assert all("errors" not in m.get("payload", {}) for m in outcomes[:8])
    last = outcomes[8]["payload"]
    errors = last["errors"] if isinstance(last, dict) else last
    assert errors[0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_whole_app_is_limited_across_its_clients(
    pair: tuple[ServerProcess, ServerProcess], crowded_key: str
) -> None:
    params, sent = _app("crowded", crowded_key)
    statuses = []
    for server in (pair[0], pair[1], pair[0], pair[1], pair[0], pair[1]):
        async with client_at(server, _address()) as http:  # a new client each time
            statuses.append(
                (await http.get("/api/control/models", params=params, headers=sent)).status_code
            )
    assert statuses == [200] * 5 + [429]  # five a minute for the app, whoever asks


async def test_message_bytes_per_minute_and_the_live_ui_is_told(
    pair: tuple[ServerProcess, ServerProcess], thrifty_key: str
) -> None:
    session_id = new_id()
    async with client_at(pair[0], _address()) as http:
        async with updates(http, session_id, thrifty_key, "thrifty") as stream:
            ok(await chat(http, session_id, "x" * 250, thrifty_key, "thrifty"))
            await until_idle(http, session_id, thrifty_key, "thrifty")
            refused = await chat(http, session_id, "y" * 100, thrifty_key, "thrifty")
            assert "bytes of messages per minute" in assert_error(refused, 429)
            [notice] = await stream.wait_for_type("system_notice")
        snapshot, _ = await until_idle(http, session_id, thrifty_key, "thrifty")
    assert notice["code"] == "RATE_LIMITED"
    assert notice["retry_after"] >= 1
    assert "bytes of messages" in notice["message"]
    # the refused message changed nothing
    assert [m["content"][:1] for m in snapshot["messages"]] == ["x", "Y"]


async def test_concurrent_turns_per_client(
    pair: tuple[ServerProcess, ServerProcess], thrifty_key: str
) -> None:
    first, second = new_id(), new_id()
    me = _address()
    async with client_at(pair[0], me) as on_a, client_at(pair[1], me) as on_b:
        ok(await chat(on_a, first, "/slow 30 a long answer", thrifty_key, "thrifty"))
        # a second session of the same client, on the other replica: refused
        refused = await chat(on_b, second, "hi", thrifty_key, "thrifty")
        assert "answering at once" in assert_error(refused, 429)
        # once the first stops, the slot is free again
        ok(
            await on_a.post(
                "/api/interrupt", params={"app": "thrifty"}, headers=headers(first, thrifty_key)
            )
        )
        ok(await chat(on_b, second, "hi", thrifty_key, "thrifty"))
        await until_idle(on_b, second, thrifty_key, "thrifty")


def test_limits_in_the_config_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "apps.toml"
    config.write_text("[apps.one.limits]\nrequests_per_mintue = 5\n")
    with pytest.raises(SettingsError, match="unknown limit 'requests_per_mintue'"):
        load_apps(config)
    config.write_text("[apps.one.limits]\nconcurrent_turns = -1\n")
    with pytest.raises(SettingsError, match=r"concurrent_turns must be a whole number >= 0"):
        load_apps(config)


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_both_counter_stores_count_alike(backend: str, limited_env: dict[str, str]) -> None:
    from runtime.counters_redis import RedisCounters
    from runtime.rate_limits import Counters, MemoryCounters

    counters: Counters = (
        MemoryCounters() if backend == "memory" else RedisCounters(limited_env["CONFAB_EVENT_BUS"])
    )
    prefix = f"confab:rl:test:{new_id()}"
    try:
        assert await counters.take(f"{prefix}:n", 5, 6, 60) == 0
        assert 0 < await counters.take(f"{prefix}:n", 2, 6, 60) <= 60  # nothing counted...
        assert await counters.take(f"{prefix}:n", 1, 6, 60) == 0  # ...so one more fits
        slots = f"{prefix}:slots"
        assert await counters.hold(slots, "a", 1, 900) == 0
        assert await counters.hold(slots, "a", 1, 900) == 0  # held already: kept
        assert 0 < await counters.hold(slots, "b", 1, 900) <= 900
        await counters.remember(f"{prefix}:note", slots, 900)
        assert await counters.recall(f"{prefix}:note") == slots
        assert await counters.recall(f"{prefix}:note") is None
        await counters.release(slots, "a")
        assert await counters.hold(slots, "b", 1, 900) == 0
    finally:
        await counters.aclose()


async def test_the_embedded_default_counts_in_process(settings: Any) -> None:
    """No Redis: the limits hold within the one process."""

    from runtime import keys
    from server import create_app

    application = create_app(settings)
    async with started(application):
        key, _ = await keys.create_key(["limited"], "tests")
        transport = httpx.ASGITransport(app=application, client=(_address(), 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://confab.test") as http:
            params, sent = _app("limited", key)
            for _ in range(8):
                ok(await http.get("/api/control/models", params=params, headers=sent))
            assert_error(await http.get("/api/control/models", params=params, headers=sent), 429)
