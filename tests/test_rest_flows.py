"""Whole legacy-client stories over real HTTP against a real server process, plus
strict mode, shutdown of event streams and unavailable backing services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from server import create_app
from settings import Settings
from tests.conftest import GraphQLClient, new_id, new_wallet, started
from tests.live import post
from tests.processes import ServerProcess
from tests.waiting import until


class SseReader:
    """Reads /api/updates the way fetch-based legacy clients do: `data:` lines."""

    def __init__(self, response: httpx.Response) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self._arrived = asyncio.Event()
        self._connected = asyncio.Event()  # the server's `: connected`: it subscribed
        self._lines = response.aiter_lines()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for line in self._lines:
            if line.startswith("id: "):
                self.ids.append(line[4:])
            elif line.startswith("data: "):
                self.events.append(json.loads(line[6:]))
                self._arrived.set()
            elif line == ": connected":
                self._connected.set()

    async def subscribed(self, timeout: float = 10) -> None:
        """Returns once the server has subscribed: later events reach this stream."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def until(self, predicate: Any, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                self._arrived.clear()
                await self._arrived.wait()

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    async def close(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


async def test_a_full_legacy_conversation(server: ServerProcess) -> None:
    wallet = new_wallet()
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        created = await http.post("/api/sessions", headers=headers, json={"public_key": wallet})
        assert created.json() == {"session_id": session_id, "title": "New chat"}

        async with http.stream("GET", "/api/updates", headers=headers) as stream:
            updates = SseReader(stream)
            await updates.subscribed()
            chat = await http.post(
                "/api/chat",
                headers=headers,
                params={"message": '/tool calculator {"expression": "6*7"}', "public_key": wallet},
            )
            assert chat.json()["is_processing"] is True
            state = chat.json()
            for _ in range(40):  # poll like the legacy client: every 500 ms
                if not state["is_processing"]:
                    break
                await asyncio.sleep(0.5)
                state = (await http.get("/api/state", headers=headers)).json()
            assert state["is_processing"] is False
            await updates.until(lambda events: "title_changed" in [e["type"] for e in events])
            await updates.close()

        assert updates.types() == ["tool_update", "tool_complete", "title_changed"]
        tool_complete = updates.events[1]
        assert tool_complete["tool_name"] == "calculator"
        assert tool_complete["result"] == {"expression": "6*7", "value": 42}
        assert updates.events[2] == {
            "type": "title_changed",
            "session_id": session_id,
            "new_title": "Using calculator",
        }
        senders = [(m["sender"], m["tool_result"] is not None) for m in state["messages"]]
        assert senders == [("user", False), ("agent", True), ("agent", False)]
        assert state["title"] == "Using calculator"

        listed = await http.get("/api/sessions", params={"public_key": wallet})
        assert listed.json() == [
            {"session_id": session_id, "title": "Using calculator", "is_archived": False}
        ]
        renamed = await http.patch(f"/api/sessions/{session_id}", json={"title": "Sums"})
        assert renamed.json() == {"session_id": session_id, "title": "Sums"}
        assert (await http.delete(f"/api/sessions/{session_id}")).json() == {"deleted": True}
        assert (await http.get("/api/sessions", params={"public_key": wallet})).json() == []


async def test_half_rest_half_graphql_shows_the_same_data(server: ServerProcess) -> None:
    session_id, wallet = new_id(), new_wallet()
    headers = {"X-Session-Id": session_id}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        await http.post("/api/chat", headers=headers, params={"message": "hello from REST"})
        await post(
            server,
            "mutation($s: ID!, $k: String) { bindWallet(sessionId: $s, publicKey: $k) { id } }",
            s=session_id,
            k=wallet,
        )
        await post(
            server,
            'mutation($s: ID!) { sendMessage(sessionId: $s, content: "and from GraphQL") { id } }',
            s=session_id,
        )

        async def both_answered() -> bool:
            state = (await http.get("/api/state", headers=headers)).json()
            return not state["is_processing"] and len(state["messages"]) == 4

        await until(both_answered, "both turns to be answered")
        state = (await http.get("/api/state", headers=headers)).json()
        await http.patch(f"/api/sessions/{session_id}", json={"title": "Both ways"})
        graph = await post(
            server,
            "query($s: ID!) { session(id: $s) { title publicKey isProcessing "
            "messages { nodes { role content } } } }",
            s=session_id,
        )
        listed = (await http.get("/api/sessions", params={"public_key": wallet})).json()

    assert [(m["sender"], m["content"]) for m in state["messages"]] == [
        ("user", "hello from REST"),
        ("agent", "You said: hello from REST"),
        ("user", "and from GraphQL"),
        ("agent", "You said: and from GraphQL"),
    ]
    session = graph["session"]
    roles = {"USER": "user", "ASSISTANT": "agent"}
    assert [(roles[m["role"]], m["content"]) for m in session["messages"]["nodes"]] == [
        (m["sender"], m["content"]) for m in state["messages"]
    ]
    assert session["title"] == "Both ways"
    assert session["publicKey"] == wallet
    assert listed == [{"session_id": session_id, "title": "Both ways", "is_archived": False}]


async def test_updates_stream_ends_when_the_server_shuts_down(
    live_env: dict[str, str], tmp_path: Any
) -> None:
    process = ServerProcess(live_env, tmp_path / "sse-shutdown.log")
    process.wait_ready()
    async with (
        httpx.AsyncClient(base_url=process.url, timeout=10) as http,
        http.stream("GET", "/api/updates", headers={"X-Session-Id": new_id()}) as stream,
    ):
        lines = stream.aiter_lines()
        assert await anext(lines) == ": connected"
        loop = asyncio.get_running_loop()
        stopping = loop.run_in_executor(None, process.stop)
        async with asyncio.timeout(5):  # well before uvicorn's 10 s graceful limit
            async for _ in lines:
                pass
        assert await stopping  # and the process shut down gracefully


async def test_keep_alive_comments(live_env: dict[str, str], tmp_path: Any) -> None:
    process = ServerProcess({**live_env, "CONFAB_SSE_KEEPALIVE": "0.2"}, tmp_path / "ka.log")
    process.wait_ready()
    try:
        async with (
            httpx.AsyncClient(base_url=process.url, timeout=10) as http,
            http.stream("GET", "/api/updates", headers={"X-Session-Id": new_id()}) as stream,
        ):
            lines = stream.aiter_lines()
            seen = [await anext(lines) for _ in range(4)]
        assert seen[0] == ": connected"
        assert ": keep-alive" in seen[1:]
    finally:
        process.stop()


@pytest.fixture
async def strict_http(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    from runtime import keys

    app = create_app(settings.with_overrides(strict_keys=True))
    async with started(app):
        key, _ = await keys.create_key(["alpha"])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http, key


async def test_strict_mode_requires_the_owning_apps_key(
    strict_http: tuple[httpx.AsyncClient, str],
) -> None:
    http, key = strict_http
    session_id = new_id()
    headers = {"X-Session-Id": session_id}
    created = await http.post("/api/sessions", headers={**headers, "X-API-Key": key})
    assert created.status_code == 200
    bare = await http.get("/api/state", headers=headers)
    assert bare.status_code == 401
    assert "app key" in bare.json()["error"]
    keyed = await http.get("/api/state", headers={**headers, "X-API-Key": key})
    assert keyed.status_code == 200
    # A default-app session still needs no key.
    other = {"X-Session-Id": new_id()}
    await http.post("/api/sessions", headers=other)
    assert (await http.get("/api/state", headers=other)).status_code == 200


async def test_without_strict_mode_the_session_id_is_a_capability(
    client: httpx.AsyncClient, alpha_key: str
) -> None:
    headers = {"X-Session-Id": new_id()}
    await client.post("/api/sessions", headers={**headers, "X-API-Key": alpha_key})
    state = await client.get("/api/state", headers=headers)
    assert state.status_code == 200
    assert state.json()["title"] == "New chat"


async def test_an_unreachable_database_is_a_503(
    app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(app.state.runtime.store, "get_session", refused)
    headers = {"X-Session-Id": new_id()}
    response = await client.get("/api/state", headers=headers)
    assert response.status_code == 503
    assert response.json() == {"error": "a backing service is unavailable; try again shortly"}


async def test_internal_errors_are_500_without_details(
    app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(app.state.runtime.store, "get_session", broken)
    response = await client.get("/api/state", headers={"X-Session-Id": new_id()})
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}


async def test_graphql_and_rest_share_app_isolation(
    gql: GraphQLClient, client: httpx.AsyncClient, alpha_key: str, beta_key: str
) -> None:
    session_id = new_id()
    await gql.with_key(alpha_key).data(
        "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id
    )
    other = await client.get(
        "/api/state", headers={"X-Session-Id": session_id, "X-API-Key": beta_key}
    )
    assert other.status_code == 404  # another app's session, named with a key: not found
    mine = await client.get(
        "/api/state", headers={"X-Session-Id": session_id, "X-API-Key": alpha_key}
    )
    assert mine.json()["title"] == "New chat"


async def test_unknown_paths_answer_in_json(client: httpx.AsyncClient) -> None:
    for path in ("/api/nope", "/api/sessions/a%0Ab", "/nothing-here"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        assert "error" in response.json()
    wrong = await client.put("/api/state")
    assert wrong.status_code == 405
    assert "GET" in wrong.headers["allow"]


async def test_a_disconnected_event_stream_is_cleaned_up(server: ServerProcess) -> None:
    async def subscribers() -> int:
        async with httpx.AsyncClient(timeout=5) as probe:
            count: int = (await probe.get(f"{server.url}/readyz")).json()["events"]["subscribers"]
            return count

    before = await subscribers()
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        http.stream("GET", "/api/updates", headers={"X-Session-Id": new_id()}) as stream,
    ):
        lines = stream.aiter_lines()  # kept: a collected iterator closes the response
        assert await anext(lines) == ": connected"
        assert await subscribers() == before + 1

    async def released() -> bool:
        return await subscribers() == before

    # the client hung up: the server lets go of the subscription
    await until(released, "the server to drop the hung-up stream's subscription")
