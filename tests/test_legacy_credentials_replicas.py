"""Legacy clients' secrets, provider keys, simulator and model choice behind a load
balancer: two replicas on PostgreSQL + Redis, each request landing on either one.
What one replica stores, the other uses at once (nothing is kept per process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import new_id, replica_pair
from tests.live import cli
from tests.processes import ServerProcess
from tests.rest_client import chat_and_wait, headers, ok
from tests.vault_server import env  # noqa: F401 - the vault apps' server environment
from tests.vault_support import sha256, tool_output, use_secret

pytestmark = pytest.mark.processes

HANDLE = "$SECRET:api_key"
SENDER = "0x742d35Cc6634C0532925a3b844Bc454e4438f44e"
TRANSFER = {"to": "0x0000000000000000000000000000000000000001", "value": "0x1", "data": "0x"}
PROVIDER_KEYS = "/api/control/provider-keys"


@pytest.fixture(scope="module")
def pair(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with replica_pair(env, tmp_path_factory.mktemp("vault-replicas")) as both:
        yield both


@pytest.fixture(scope="module")
def vault_key(env: dict[str, str], pair: tuple[ServerProcess, ServerProcess]) -> str:
    return cli(env, "keys", "create", "--app", "vault")


@pytest.fixture
async def clients(
    pair: tuple[ServerProcess, ServerProcess],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    first, second = pair
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=15) as on_a,
        httpx.AsyncClient(base_url=second.url, timeout=15) as on_b,
    ):
        yield on_a, on_b


async def test_a_secret_stored_on_one_replica_is_used_and_cleared_on_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], vault_key: str
) -> None:
    on_a, on_b = clients
    client_id, value = f"cli-{new_id()}", f"sk-live-{new_id()}"
    stored = await on_a.post(
        "/api/secrets",
        json={"client_id": client_id, "secrets": {"api_key": value}},
        headers=headers(key=vault_key),
    )
    assert ok(stored) == {"handles": {"api_key": HANDLE}}
    session_id = new_id()
    snapshot = await chat_and_wait(
        on_b, session_id, use_secret(HANDLE), vault_key, "vault", client_id=client_id
    )
    assert tool_output(snapshot)["result"]["sha256"] == sha256(value)

    cleared = await on_b.delete(
        "/api/secrets", params={"client_id": client_id}, headers=headers(key=vault_key)
    )
    assert ok(cleared) == {"cleared": True}
    snapshot = await chat_and_wait(on_a, session_id, use_secret(HANDLE), vault_key, "vault")
    assert tool_output(snapshot)["result"]["sha256"] == sha256(HANDLE), "no longer resolved"


async def test_provider_keys_saved_on_one_replica_are_listed_and_deleted_on_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], vault_key: str
) -> None:
    on_a, on_b = clients
    client_id, session_id = f"cli-{new_id()}", new_id()
    await chat_and_wait(on_a, session_id, "hello", vault_key, "vault", client_id=client_id)
    sent = headers(session_id, vault_key)
    body = {"provider": "openai", "api_key": "sk-client-Qm7vYz2LkP9wR4tX8nB1", "label": "mine"}
    ok(await on_a.post(PROVIDER_KEYS, json=body, headers=sent))
    listed = ok(await on_b.get(PROVIDER_KEYS, headers=sent))["provider_keys"]
    assert [(k["provider"], k["label"], k["is_active"]) for k in listed] == [
        ("openai", "mine", True)
    ]
    assert body["api_key"] not in str(listed)
    assert ok(await on_b.delete(f"{PROVIDER_KEYS}/openai", headers=sent)) == {"deleted": True}
    assert ok(await on_a.get(PROVIDER_KEYS, headers=sent)) == {"provider_keys": []}


async def test_simulate_and_the_model_choice_reach_a_session_made_on_the_other_replica(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], vault_key: str
) -> None:
    on_a, on_b = clients
    session_id = new_id()
    await chat_and_wait(on_a, session_id, "hello", vault_key, "vault")
    simulated = await on_b.post(
        "/api/simulate",
        json={"transactions": [TRANSFER], "from": SENDER, "chain_id": 1},
        headers=headers(session_id),  # the session id alone: the session's app
    )
    result = ok(simulated)["result"]
    assert result["success"] is True
    assert result["session_id"] == session_id
    chosen = await on_b.post(
        "/api/control/model", params={"rig": "builtin"}, headers=headers(session_id)
    )
    assert ok(chosen) == {"success": True, "rig": "builtin", "baml": "builtin", "created": False}
