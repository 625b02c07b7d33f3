"""A real server process with the vault apps (tests/vault_support.py), one per test
module that imports these fixtures: `from tests.vault_server import env, http,
server, vault_key`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.live import cli
from tests.processes import ServerProcess, running
from tests.vault_support import live_vault_env


@pytest.fixture(scope="module")
def env(live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return live_vault_env(live_env, tmp_path_factory.mktemp("vault-config"))


@pytest.fixture(scope="module")
def server(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with running(env, tmp_path_factory.mktemp("vault-server") / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def vault_key(env: dict[str, str]) -> str:
    return cli(env, "keys", "create", "--app", "vault")


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client
