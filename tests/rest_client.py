"""Helpers for the REST contract tests: legacy-client calls, polling, SSE reading."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

MAX_MESSAGE = 32 * 1024
NEW_CHAT = "New chat"
LEGACY_KEYS = {"sender", "content", "tool_result", "timestamp", "is_streaming"}
SSE_TYPES = {"title_changed", "tool_update", "tool_complete", "system_notice"}
INTERRUPTION = {
    "InlineCall": {
        "type": "user_request",
        "kind": "Interruption",
        "payload": "Interrupted by user",
    }
}
CORS_ORIGIN = "https://app.example"


# -- helpers ----------------------------------------------------------------------


def headers(
    session_id: str | None = None, key: str | None = None, key_header: str = "AOMI-APP-KEY"
) -> dict[str, str]:
    """What a legacy client sends: the session header and, for non-default apps, a key."""
    sent: dict[str, str] = {}
    if session_id is not None:
        sent["X-Session-Id"] = session_id
    if key is not None:
        sent[key_header] = key
    return sent


def app_params(app: str | None) -> dict[str, str]:
    return {} if app is None else {"app": app}


def assert_error(response: httpx.Response, status: int) -> str:
    """`{"error": "<human readable reason>"}` with the status, never a stack trace."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str), body
    assert body["error"].strip(), body
    assert "Traceback" not in response.text, response.text
    assert 'File "' not in response.text, response.text
    return str(body["error"])


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


async def chat(
    http: httpx.AsyncClient,
    session_id: str,
    message: str,
    key: str | None = None,
    app: str | None = None,
    **params: str,
) -> httpx.Response:
    return await http.post(
        "/api/chat",
        params={"message": message, **app_params(app), **params},
        headers=headers(session_id, key),
    )


async def state(
    http: httpx.AsyncClient, session_id: str, key: str | None = None, app: str | None = None
) -> dict[str, Any]:
    snapshot: dict[str, Any] = ok(
        await http.get("/api/state", params=app_params(app), headers=headers(session_id, key))
    )
    return snapshot


async def until_idle(
    http: httpx.AsyncClient,
    session_id: str,
    key: str | None = None,
    app: str | None = None,
    timeout: float = 10,
) -> tuple[dict[str, Any], list[Any]]:
    """Poll /api/state like a client until `is_processing` is false.

    Returns the last snapshot and every system event the polls carried (each
    snapshot carries only the events added since the previous one).
    """
    seen: list[Any] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        snapshot = await state(http, session_id, key, app)
        seen.extend(snapshot["system_events"])
        if not snapshot["is_processing"]:
            return snapshot, seen
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"session {session_id} still processing: {snapshot}")
        await asyncio.sleep(0.2)


async def until_streaming(
    http: httpx.AsyncClient,
    session_id: str,
    key: str | None = None,
    app: str | None = None,
    timeout: float = 20,
) -> dict[str, Any]:
    """Poll /api/state like a client until part of the answer has been streamed."""
    async with asyncio.timeout(timeout):
        while True:
            snapshot = await state(http, session_id, key, app)
            if any(m["is_streaming"] and m["content"] for m in snapshot["messages"]):
                return snapshot
            await asyncio.sleep(0.05)


async def until_idle_without_snapshots(
    http: httpx.AsyncClient, session_id: str, key: str | None = None, timeout: float = 10
) -> None:
    """Wait for the turn to end without taking a REST snapshot (GraphQL, no cursor)."""
    deadline = asyncio.get_running_loop().time() + timeout
    query = "query($s: ID!) { session(id: $s) { isProcessing } }"
    while (await graphql(http, query, key, s=session_id))["session"]["isProcessing"]:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"session {session_id} still processing")
        await asyncio.sleep(0.2)


async def create_session(
    http: httpx.AsyncClient,
    session_id: str,
    key: str | None = None,
    app: str | None = None,
    public_key: str | None = None,
) -> dict[str, Any]:
    body = None if public_key is None else {"public_key": public_key}
    response = await http.post(
        "/api/sessions", params=app_params(app), json=body, headers=headers(session_id, key)
    )
    assert response.status_code in (200, 201), response.text
    created: dict[str, Any] = response.json()
    return created


async def chat_and_wait(
    http: httpx.AsyncClient,
    session_id: str,
    message: str,
    key: str | None = None,
    app: str | None = None,
    **params: str,
) -> dict[str, Any]:
    ok(await chat(http, session_id, message, key, app, **params))
    snapshot, _ = await until_idle(http, session_id, key, app)
    return snapshot


def assert_legacy_message(message: dict[str, Any]) -> None:
    assert message.keys() >= LEGACY_KEYS, message
    assert message["sender"] in ("user", "agent", "system"), message
    assert isinstance(message["content"], str), message
    assert isinstance(message["is_streaming"], bool), message
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2} UTC", message["timestamp"]), message


def seconds_from_now(timestamp: str) -> float:
    """How far an `HH:MM:SS UTC` timestamp is from the current UTC time of day."""
    now = datetime.now(UTC)
    hours, minutes, seconds = (int(part) for part in timestamp.removesuffix(" UTC").split(":"))
    delta = abs(
        (hours * 3600 + minutes * 60 + seconds) - (now.hour * 3600 + now.minute * 60 + now.second)
    )
    return min(delta, 86400 - delta)


def senders(snapshot: dict[str, Any]) -> list[str]:
    return [m["sender"] for m in snapshot["messages"]]


async def subscriber_count(http: httpx.AsyncClient) -> int:
    with contextlib.suppress(httpx.HTTPError, KeyError, TypeError, ValueError):
        return int((await http.get("/readyz")).json()["events"]["subscribers"])
    return -1


class EventStream:
    """An open `GET /api/updates`, read in the background like a fetch()-based client."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []
        self.ids: list[str | None] = []
        self.comments: list[str] = []
        self.comment_times: list[float] = []
        self.data_lines: list[int] = []  # `data:` lines per event (one each, by contract)
        self.opened_at = asyncio.get_running_loop().time()
        self.error: BaseException | None = None
        self.closed = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        event_id: str | None = None
        data: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                if line.startswith(":"):
                    self.comments.append(line)
                    self.comment_times.append(asyncio.get_running_loop().time())
                elif line == "":
                    if data:
                        self.events.append(json.loads("\n".join(data)))
                        self.ids.append(event_id)
                        self.data_lines.append(len(data))
                    event_id, data = None, []
                elif line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].removeprefix(" "))
                self._changed.set()
        except Exception as exc:
            self.error = exc
        finally:
            self.closed = True
            self._changed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    async def wait_until(
        self, done: Callable[[EventStream], bool], what: str, timeout: float = 10
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not done(self):
                    if self.closed:
                        raise AssertionError(
                            f"stream ended ({self.error!r}) before {what}: {self.events}"
                        )
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout}s: {self.events}") from None

    async def wait_for_type(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        await self.wait_until(lambda s: len(s.of_type(kind)) >= count, f"{count} x {kind}")
        return self.of_type(kind)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


@asynccontextmanager
async def updates(
    http: httpx.AsyncClient,
    session_id: str,
    key: str | None = None,
    app: str | None = None,
    last_event_id: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> AsyncIterator[EventStream]:
    sent = {**headers(session_id, key), **(extra_headers or {}), "Accept": "text/event-stream"}
    if last_event_id is not None:
        sent["Last-Event-ID"] = last_event_id
    request = http.build_request(
        "GET",
        "/api/updates",
        params=app_params(app),
        headers=sent,
        timeout=httpx.Timeout(10, read=30),
    )
    response = await asyncio.wait_for(http.send(request, stream=True), 10)
    stream: EventStream | None = None
    try:
        if response.status_code != 200:
            body = await asyncio.wait_for(response.aread(), 5)
            raise AssertionError(f"/api/updates: {response.status_code} {body!r}")
        stream = EventStream(response)
        # The server says `: connected` once it has subscribed: events the test makes
        # happen from now on reach the stream.
        await stream.wait_until(lambda s: ": connected" in s.comments, "the stream's subscription")
        yield stream
    finally:
        if stream is not None:
            await stream.close()
        await response.aclose()


async def updates_status(
    http: httpx.AsyncClient, sent: dict[str, str], params: dict[str, str] | None = None
) -> httpx.Response:
    """The response of opening /api/updates when it is expected to be refused."""
    request = http.build_request(
        "GET", "/api/updates", params=params or {}, headers={**sent, "Accept": "text/event-stream"}
    )
    response = await asyncio.wait_for(http.send(request, stream=True), 10)
    try:
        if response.status_code != 200:
            await asyncio.wait_for(response.aread(), 5)
    finally:
        await response.aclose()
    return response


async def graphql(
    http: httpx.AsyncClient, query: str, key: str | None = None, **variables: Any
) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers(key=key)
    )
    body = ok(response)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data
