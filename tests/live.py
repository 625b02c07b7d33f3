"""Helpers for tests against real server processes over WebSockets (gql client)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin, Subprotocol

from tests.processes import ROOT, ServerProcess

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`server.py ARGS` with `env` over this process's environment."""
    return subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli(env: dict[str, str], *args: str) -> str:
    """Its standard output, once it succeeded."""
    result = run_cli(env, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@asynccontextmanager
async def ws_session(
    server: ServerProcess,
    *,
    init_payload: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    protocol: str = TRANSPORT_WS,
) -> AsyncIterator[AsyncClientSession]:
    transport = WebsocketsTransport(
        url=f"ws://127.0.0.1:{server.port}/graphql",
        init_payload=init_payload or {},
        headers=headers,
        subprotocols=[protocol],
        connect_timeout=5,
        ack_timeout=5,
        close_timeout=2,
    )
    async with Client(transport=transport) as session:
        yield session


async def raw_ws(server: ServerProcess, origin: str | None = None) -> ClientConnection:
    """A bare graphql-transport-ws connection, for what a client library hides."""
    return await connect(
        f"ws://127.0.0.1:{server.port}/graphql",
        subprotocols=[Subprotocol(TRANSPORT_WS)],
        origin=None if origin is None else Origin(origin),
    )


class Collector:
    """Runs one subscription in the background and keeps what it receives."""

    def __init__(self, session: AsyncClientSession, query: str, **variables: Any) -> None:
        self.results: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run(session, query, variables))

    async def _run(
        self, session: AsyncClientSession, query: str, variables: dict[str, Any]
    ) -> None:
        try:
            request = GraphQLRequest(query, variable_values=variables)
            async for result in session.subscribe(request):
                self.results.append(result)
                self._arrived.set()
        except Exception as exc:
            self.error = exc
            self._arrived.set()

    async def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.results) < count and self.error is None:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"got {len(self.results)} of {count}: {self.results}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue
        if self.error is not None and len(self.results) < count:
            raise self.error
        return self.results[:count]

    async def wait_closed(self, timeout: float = 10) -> BaseException | None:
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return self.error

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


async def wait_for_subscribers(server: ServerProcess, count: int, timeout: float = 10) -> None:
    """Until the server has `count` live subscriptions (no race with the first event)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            status = (await http.get(f"{server.url}/readyz")).json()
            if status["events"]["subscribers"] >= count:
                return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{count} subscribers never appeared on {server.url}")


async def post(
    server: ServerProcess, query: str, key: str | None = None, **variables: Any
) -> dict[str, Any]:
    """A GraphQL operation over HTTP; fails the test on any error."""
    body = await post_raw(server, query, key, **variables)
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def post_raw(
    server: ServerProcess, query: str, key: str | None = None, **variables: Any
) -> dict[str, Any]:
    headers = {"AOMI-APP-KEY": key} if key else {}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{server.url}/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    return response.json()  # type: ignore[no-any-return]
