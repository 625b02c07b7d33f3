"""The REST compatibility layer, black box, from /work/shared/spec/rest-compat.md.

One real server process (PostgreSQL, Redis) called over HTTP the way a legacy client
calls it: the message in the query string, the session id only in `X-Session-Id`,
the app key in `AOMI-APP-KEY` or `X-API-Key`, the app chosen with `?app=` or
`?namespace=`; snapshots polled from `/api/state`, live events read from the
Server-Sent Events stream at `/api/updates`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest

from tests.conftest import new_id, new_wallet
from tests.live import cli
from tests.processes import ServerProcess

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


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def beta_cli_key(live_env: dict[str, str]) -> str:
    return cli(live_env, "keys", "create", "--app", "beta")


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


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
) -> AsyncIterator[EventStream]:
    sent = {**headers(session_id, key), "Accept": "text/event-stream"}
    if last_event_id is not None:
        sent["Last-Event-ID"] = last_event_id
    before = await subscriber_count(http)
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
        # Best effort: let the server subscribe before the test makes events happen.
        if before >= 0:
            for _ in range(40):
                if await subscriber_count(http) > before:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
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


# -- POST /api/sessions -------------------------------------------------------------


@pytest.mark.parametrize("body", ["absent", "empty", "{}"])
async def test_create_session_without_a_body(http: httpx.AsyncClient, body: str) -> None:
    session_id = new_id()
    sent = headers(session_id)
    if body == "absent":
        response = await http.post("/api/sessions", headers=sent)
    elif body == "empty":
        response = await http.post(
            "/api/sessions", content=b"", headers={**sent, "Content-Type": "application/json"}
        )
    else:
        response = await http.post("/api/sessions", json={}, headers=sent)
    assert response.status_code in (200, 201), response.text
    created = response.json()
    assert created["session_id"] == session_id
    assert created["title"] == NEW_CHAT
    fetched = ok(await http.get(f"/api/sessions/{session_id}", headers=sent))
    assert fetched["session_id"] == session_id


async def test_create_session_with_public_key_binds_the_wallet(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    created = await create_session(http, session_id, public_key=wallet)
    assert created["session_id"] == session_id
    assert created["title"] == NEW_CHAT
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [session_id]


async def test_create_session_is_idempotent_and_returns_the_current_title(
    http: httpx.AsyncClient,
) -> None:
    session_id, wallet = new_id(), new_wallet()
    await create_session(http, session_id, public_key=wallet)
    ok(
        await http.patch(
            f"/api/sessions/{session_id}", json={"title": "Kept title"}, headers=headers(session_id)
        )
    )
    again = await create_session(http, session_id, public_key=wallet)
    assert again["session_id"] == session_id
    assert again["title"] == "Kept title"
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [session_id]  # still one session


async def test_create_session_returns_a_generated_title(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await chat_and_wait(http, session_id, "ETH price check please")
    again = await create_session(http, session_id)
    assert again["title"] == "ETH price check please"


@pytest.mark.parametrize("session_id", [None, "not-a-uuid", "1234"], ids=["missing", "bad", "num"])
async def test_create_session_needs_a_uuid_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await http.post("/api/sessions", headers=headers(session_id)), 400)


# -- GET /api/sessions ---------------------------------------------------------------


async def test_list_sessions_needs_public_key(http: httpx.AsyncClient) -> None:
    assert_error(await http.get("/api/sessions"), 400)


async def test_list_sessions_of_a_wallet_newest_activity_first(
    http: httpx.AsyncClient, alpha_cli_key: str
) -> None:
    wallet, other = new_wallet(), new_wallet()
    first, second, third = new_id(), new_id(), new_id()
    for session_id in (first, second, third):
        await create_session(http, session_id, public_key=wallet)
        await asyncio.sleep(0.05)
    await create_session(http, new_id(), public_key=other)  # another wallet
    alpha_session = new_id()  # the same wallet in another app
    await create_session(http, alpha_session, key=alpha_cli_key, app="alpha", public_key=wallet)

    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [third, second, first]
    for item in listed:
        assert item["title"] == NEW_CHAT
        assert item["is_archived"] is False

    await asyncio.sleep(0.05)
    await chat_and_wait(http, first, "activity on the oldest")  # now the most recently active
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [first, third, second]

    limited = ok(await http.get("/api/sessions", params={"public_key": wallet, "limit": "2"}))
    assert [s["session_id"] for s in limited] == [first, third]

    in_alpha = ok(
        await http.get(
            "/api/sessions",
            params={"public_key": wallet, "app": "alpha"},
            headers=headers(key=alpha_cli_key),
        )
    )
    assert [s["session_id"] for s in in_alpha] == [alpha_session]


async def test_a_chat_with_public_key_lists_the_session(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    await chat_and_wait(http, session_id, "hello wallet", public_key=wallet)
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [s["session_id"] for s in listed] == [session_id]
    assert listed[0]["title"] == "Hello wallet"


# -- GET/PATCH/DELETE /api/sessions/{id}, archive, unarchive -----------------------


async def test_get_session(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    fetched = ok(await http.get(f"/api/sessions/{session_id}"))  # no header: the path names it
    assert fetched["session_id"] == session_id
    assert fetched["title"] == NEW_CHAT
    assert fetched["is_archived"] is False
    repeated = ok(await http.get(f"/api/sessions/{session_id}", headers=headers(session_id)))
    assert repeated["session_id"] == session_id


async def test_unknown_session_is_404(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    assert_error(await http.get(f"/api/sessions/{session_id}", headers=sent), 404)
    assert_error(
        await http.patch(f"/api/sessions/{session_id}", json={"title": "x"}, headers=sent), 404
    )
    assert_error(await http.delete(f"/api/sessions/{session_id}", headers=sent), 404)
    assert_error(await http.post(f"/api/sessions/{session_id}/archive", headers=sent), 404)
    assert_error(await http.post(f"/api/sessions/{session_id}/unarchive", headers=sent), 404)
    assert_error(await http.post("/api/interrupt", headers=sent), 404)
    assert_error(await http.get("/api/events", headers=sent), 404)
    # none of these created it
    assert_error(await http.get(f"/api/sessions/{session_id}", headers=sent), 404)


async def test_rename_session(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    renamed = ok(
        await http.patch(
            f"/api/sessions/{session_id}",
            json={"title": "ETH price check"},
            headers=headers(session_id),
        )
    )
    assert renamed["session_id"] == session_id
    assert renamed["title"] == "ETH price check"
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == "ETH price check"
    assert (await state(http, session_id))["title"] == "ETH price check"


@pytest.mark.parametrize(
    "body",
    [{}, {"title": ""}, {"title": "   "}, {"title": None}, {"name": "wrong field"}],
    ids=["missing", "empty", "blank", "null", "other-field"],
)
async def test_rename_needs_a_title(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    assert_error(
        await http.patch(f"/api/sessions/{session_id}", json=body, headers=headers(session_id)),
        400,
    )
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == NEW_CHAT


async def test_rename_without_a_json_body_is_400(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    assert_error(
        await http.patch(
            f"/api/sessions/{session_id}",
            content=b"title=nope",
            headers={**headers(session_id), "Content-Type": "application/json"},
        ),
        400,
    )


async def test_a_user_title_is_not_overwritten_by_automatic_titling(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    ok(
        await http.patch(
            f"/api/sessions/{session_id}",
            json={"title": "My own title"},
            headers=headers(session_id),
        )
    )
    snapshot = await chat_and_wait(http, session_id, "ETH price check please")
    assert senders(snapshot) == ["user", "agent"]  # the exchange that would generate a title
    assert snapshot["title"] == "My own title"
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == "My own title"


async def test_a_title_is_generated_after_the_first_exchange(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    snapshot = await chat_and_wait(http, session_id, "ETH price check please")
    assert snapshot["title"] == "ETH price check please"
    assert ok(await http.get(f"/api/sessions/{session_id}"))["title"] == "ETH price check please"


async def test_delete_session_removes_it_everywhere(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    await chat_and_wait(http, session_id, "something to forget", public_key=wallet)
    sent = headers(session_id)
    deleted = ok(await http.delete(f"/api/sessions/{session_id}", headers=sent))
    assert deleted["deleted"] is True
    assert_error(await http.get(f"/api/sessions/{session_id}", headers=sent), 404)
    assert ok(await http.get("/api/sessions", params={"public_key": wallet})) == []
    gone = await state(http, session_id)
    assert gone["messages"] == []
    assert gone["title"] is None
    assert gone["is_processing"] is False
    assert_error(await http.get("/api/events", headers=sent), 404)
    assert_error(await http.delete(f"/api/sessions/{session_id}", headers=sent), 404)
    # the same id starts afresh: nothing of the old conversation comes back
    snapshot = await chat_and_wait(http, session_id, "a new start")
    assert [m["content"] for m in snapshot["messages"]] == ["a new start", "You said: a new start"]


async def test_archive_and_unarchive(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    await create_session(http, session_id, public_key=wallet)
    sent = headers(session_id)
    archived = ok(await http.post(f"/api/sessions/{session_id}/archive", headers=sent))
    assert archived["session_id"] == session_id
    assert archived["is_archived"] is True
    assert ok(await http.get(f"/api/sessions/{session_id}"))["is_archived"] is True
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [(s["session_id"], s["is_archived"]) for s in listed] in ([(session_id, True)], [])

    restored = ok(await http.post(f"/api/sessions/{session_id}/unarchive", headers=sent))
    assert restored["session_id"] == session_id
    assert restored["is_archived"] is False
    assert ok(await http.get(f"/api/sessions/{session_id}"))["is_archived"] is False
    listed = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert [(s["session_id"], s["is_archived"]) for s in listed] == [(session_id, False)]


# -- POST /api/chat -----------------------------------------------------------------


async def test_chat_creates_the_session_and_returns_a_processing_snapshot(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    assert_error(await http.get(f"/api/sessions/{session_id}"), 404)
    snapshot = ok(await chat(http, session_id, "/slow 1 are you there", client_id="legacy-web"))
    assert snapshot["is_processing"] is True
    assert {"messages", "system_events", "title", "is_processing", "user_state"} <= snapshot.keys()
    assert snapshot["title"] == NEW_CHAT
    assert snapshot["user_state"] is None
    user = snapshot["messages"][0]
    assert_legacy_message(user)
    assert (user["sender"], user["content"]) == ("user", "/slow 1 are you there")
    assert ok(await http.get(f"/api/sessions/{session_id}"))["session_id"] == session_id

    mid = ok(
        await http.get(
            "/api/state", params={"client_id": "legacy-web"}, headers=headers(session_id)
        )
    )
    assert mid["messages"][0]["content"] == "/slow 1 are you there"
    done, _ = await until_idle(http, session_id)
    assert [(m["sender"], m["content"]) for m in done["messages"]] == [
        ("user", "/slow 1 are you there"),
        ("agent", "You said: are you there"),
    ]


@pytest.mark.parametrize("field", ["message", "text"])
async def test_chat_accepts_a_json_body_when_the_query_has_none(
    http: httpx.AsyncClient, field: str
) -> None:
    session_id = new_id()
    response = await http.post(
        "/api/chat", json={field: f"sent in the {field} field"}, headers=headers(session_id)
    )
    assert ok(response)["messages"][0]["content"] == f"sent in the {field} field"
    done, _ = await until_idle(http, session_id)
    assert done["messages"][-1]["content"] == f"You said: sent in the {field} field"


@pytest.mark.parametrize(
    "params", [{}, {"message": ""}, {"message": "   \n "}], ids=["missing", "empty", "blank"]
)
async def test_chat_needs_a_message(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    session_id = new_id()
    assert_error(await http.post("/api/chat", params=params, headers=headers(session_id)), 400)


@pytest.mark.parametrize("session_id", [None, "not-a-uuid"], ids=["missing", "bad"])
async def test_chat_needs_a_uuid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    response = await http.post("/api/chat", params={"message": "hi"}, headers=headers(session_id))
    assert_error(response, 400)


async def test_chat_accepts_exactly_32_kib(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    snapshot = ok(await chat(http, session_id, "x" * MAX_MESSAGE))
    assert snapshot["messages"][0]["content"] == "x" * MAX_MESSAGE
    await until_idle(http, session_id)


@pytest.mark.parametrize("where", ["query", "body"])
async def test_chat_refuses_more_than_32_kib(http: httpx.AsyncClient, where: str) -> None:
    session_id = new_id()
    message = "x" * (MAX_MESSAGE + 1)
    if where == "query":
        response = await chat(http, session_id, message)
    else:
        response = await http.post(
            "/api/chat", json={"message": message}, headers=headers(session_id)
        )
    assert_error(response, 413)


async def test_queued_messages_are_answered_in_order_while_processing(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    first = ok(await chat(http, session_id, "/slow 0.6 first"))
    second = ok(await chat(http, session_id, "/slow 0.3 second"))
    assert first["is_processing"] is True
    assert second["is_processing"] is True
    done, _ = await until_idle(http, session_id)  # processing covers the queued turn too
    agent = [m["content"] for m in done["messages"] if m["sender"] == "agent"]
    user = [m["content"] for m in done["messages"] if m["sender"] == "user"]
    assert user == ["/slow 0.6 first", "/slow 0.3 second"]
    assert agent == ["You said: first", "You said: second"]


async def test_a_full_queue_is_429(http: httpx.AsyncClient, gamma_cli_key: str) -> None:
    session_id, key = new_id(), gamma_cli_key
    ok(await chat(http, session_id, "/slow 2 running", key, "gamma"))
    await asyncio.sleep(0.2)  # the first turn runs; gamma queues at most 2 more
    ok(await chat(http, session_id, "queued one", key, "gamma"))
    ok(await chat(http, session_id, "queued two", key, "gamma"))
    assert_error(await chat(http, session_id, "one too many", key, "gamma"), 429)
    ok(await http.post("/api/interrupt", params={"app": "gamma"}, headers=headers(session_id, key)))
    done, _ = await until_idle(http, session_id, key, "gamma")
    user = [m["content"] for m in done["messages"] if m["sender"] == "user"]
    assert user == ["/slow 2 running", "queued one", "queued two"]


# -- GET /api/state --------------------------------------------------------------------


async def test_state_renders_legacy_messages(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    snapshot = await chat_and_wait(http, session_id, "hello legacy")
    assert snapshot["is_processing"] is False
    assert [(m["sender"], m["content"], m["tool_result"]) for m in snapshot["messages"]] == [
        ("user", "hello legacy", None),
        ("agent", "You said: hello legacy", None),
    ]
    for message in snapshot["messages"]:
        assert_legacy_message(message)
        assert message["is_streaming"] is False
        assert seconds_from_now(message["timestamp"]) < 120  # UTC, not local time


async def test_state_renders_tool_results(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    command = '/tool calculator {"expression": "6*7"}'
    snapshot = await chat_and_wait(http, session_id, command)
    for message in snapshot["messages"]:
        assert_legacy_message(message)
    assert snapshot["messages"][0]["sender"] == "user"
    assert snapshot["messages"][0]["content"] == command
    tools = [m for m in snapshot["messages"] if m["tool_result"] is not None]
    assert len(tools) == 1, snapshot["messages"]
    [tool] = tools
    assert tool["sender"] == "agent"
    assert tool["content"] == ""
    assert isinstance(tool["tool_result"], list)
    assert len(tool["tool_result"]) == 2
    assert tool["tool_result"][0] == "calculator"
    assert isinstance(tool["tool_result"][1], str)
    assert "42" in tool["tool_result"][1]
    answer = snapshot["messages"][-1]
    assert answer["sender"] == "agent"
    assert answer["tool_result"] is None
    assert "42" in answer["content"]


async def test_state_shows_processing_and_the_streaming_message(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    long_text = " ".join(f"word{n}" for n in range(40))
    ok(await chat(http, session_id, f"/slow 3 {long_text}"))
    await asyncio.sleep(0.8)
    mid = await state(http, session_id)
    assert mid["is_processing"] is True
    streaming = mid["messages"][-1]
    assert_legacy_message(streaming)
    assert streaming["sender"] == "agent"
    assert streaming["is_streaming"] is True
    assert streaming["content"].startswith("You said: word0")
    ok(await http.post("/api/interrupt", headers=headers(session_id)))


async def test_state_of_an_unknown_session_is_empty_and_creates_nothing(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    snapshot = await state(http, session_id)
    assert snapshot["messages"] == []
    assert snapshot["system_events"] == []
    assert snapshot["title"] is None
    assert snapshot["is_processing"] is False
    assert_error(await http.get(f"/api/sessions/{session_id}"), 404)
    # asking with user_state does not create it either
    user_state = json.dumps({"address": new_wallet(), "chain_id": 1})
    with_state = ok(
        await http.get("/api/state", params={"user_state": user_state}, headers=headers(session_id))
    )
    assert with_state["title"] is None
    assert_error(await http.get(f"/api/sessions/{session_id}"), 404)


@pytest.mark.parametrize("session_id", [None, "not-a-uuid"], ids=["missing", "bad"])
async def test_state_needs_a_uuid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await http.get("/api/state", headers=headers(session_id)), 400)


@pytest.mark.parametrize("via", ["chat", "state"])
async def test_nested_user_state_is_returned_nested_and_flat(
    http: httpx.AsyncClient, via: str
) -> None:
    session_id, wallet = new_id(), new_wallet()
    sent = {"connection": {"is_connected": True}, "evm": {"address": wallet, "chain_id": 1}}
    if via == "chat":
        returned = ok(await chat(http, session_id, "hi", user_state=json.dumps(sent)))
    else:
        await create_session(http, session_id)
        returned = ok(
            await http.get(
                "/api/state", params={"user_state": json.dumps(sent)}, headers=headers(session_id)
            )
        )
    for snapshot in (returned, (await until_idle(http, session_id))[0]):
        user_state = snapshot["user_state"]
        assert user_state["connection"]["is_connected"] is True
        assert user_state["evm"]["address"] == wallet
        assert user_state["evm"]["chain_id"] == 1
        assert user_state["address"] == wallet
        assert user_state["chain_id"] == 1
        assert user_state["is_connected"] is True


@pytest.mark.parametrize("via", ["chat", "state"])
async def test_flat_user_state_is_returned_nested_and_flat(
    http: httpx.AsyncClient, via: str
) -> None:
    session_id, wallet = new_id(), new_wallet()
    sent = {
        "address": wallet,
        "chainId": 137,
        "isConnected": True,
        "ens_name": "vitalik.eth",
        "ext": {"theme": "dark", "n": 3},
    }
    if via == "chat":
        returned = ok(await chat(http, session_id, "hi", user_state=json.dumps(sent)))
    else:
        await create_session(http, session_id)
        returned = ok(
            await http.get(
                "/api/state", params={"user_state": json.dumps(sent)}, headers=headers(session_id)
            )
        )
    for snapshot in (returned, (await until_idle(http, session_id))[0]):
        user_state = snapshot["user_state"]
        assert user_state["connection"]["is_connected"] is True
        assert user_state["evm"]["address"] == wallet
        assert user_state["evm"]["chain_id"] == 137
        assert user_state["address"] == wallet
        assert user_state["chain_id"] == 137
        assert user_state["is_connected"] is True
        assert user_state["ens_name"] == "vitalik.eth"
        assert user_state["ext"] == {"theme": "dark", "n": 3}


async def test_flat_user_state_with_snake_case_keys(http: httpx.AsyncClient) -> None:
    session_id, wallet = new_id(), new_wallet()
    sent = {"address": wallet, "chain_id": 10, "is_connected": False}
    snapshot = ok(await chat(http, session_id, "hi", user_state=json.dumps(sent)))
    user_state = snapshot["user_state"]
    assert user_state["connection"]["is_connected"] is False
    assert user_state["evm"]["address"] == wallet
    assert user_state["evm"]["chain_id"] == 10
    assert (user_state["address"], user_state["chain_id"], user_state["is_connected"]) == (
        wallet,
        10,
        False,
    )
    await until_idle(http, session_id)


@pytest.mark.parametrize("via", ["chat", "state"])
async def test_invalid_user_state_json_is_400(http: httpx.AsyncClient, via: str) -> None:
    session_id = new_id()
    params = {"user_state": "{not json"}
    if via == "chat":
        response = await http.post(
            "/api/chat", params={"message": "hi", **params}, headers=headers(session_id)
        )
    else:
        await create_session(http, session_id)
        response = await http.get("/api/state", params=params, headers=headers(session_id))
    assert_error(response, 400)


async def test_system_events_carry_only_what_is_new_and_events_keeps_history(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    sent = headers(session_id)

    first = ok(await chat(http, session_id, "/fail boom one"))
    _, seen = await until_idle(http, session_id)
    seen = first["system_events"] + seen
    errors = [e for e in seen if isinstance(e, dict) and "SystemError" in e]
    assert len(errors) == 1, seen  # delivered once, by the snapshot after it happened
    assert "boom one" in errors[0]["SystemError"]

    assert (await state(http, session_id))["system_events"] == []  # the cursor moved past it

    history = ok(await http.get("/api/events", headers=sent))
    assert any(e.get("SystemError", "").find("boom one") >= 0 for e in history), history
    assert ok(await http.get("/api/events", headers=sent)) == history  # it does not consume

    second = ok(await chat(http, session_id, "/fail boom two"))
    _, seen = await until_idle(http, session_id)
    seen = second["system_events"] + seen
    new_errors = [e["SystemError"] for e in seen if isinstance(e, dict) and "SystemError" in e]
    assert len(new_errors) == 1, seen
    assert "boom two" in new_errors[0]

    history = ok(await http.get("/api/events", headers=sent))
    all_errors = [e["SystemError"] for e in history if isinstance(e, dict) and "SystemError" in e]
    assert len(all_errors) == 2, history
    assert "boom one" in all_errors[0]  # oldest first
    assert "boom two" in all_errors[1]

    # reading /api/events first does not consume what the next snapshot carries
    third = ok(await chat(http, session_id, "/fail boom three"))
    await until_idle_without_snapshots(http, session_id)
    history = ok(await http.get("/api/events", headers=sent))
    assert "boom three" in json.dumps(history[-1]), history
    assert ok(await http.get("/api/events", headers=sent)) == history
    snapshot = await state(http, session_id)
    carried = third["system_events"] + snapshot["system_events"]
    pending = [e["SystemError"] for e in carried if "SystemError" in e]
    assert len(pending) == 1, (third["system_events"], snapshot["system_events"])
    assert "boom three" in pending[0]


# -- POST /api/interrupt -----------------------------------------------------------------


async def test_interrupt_keeps_partial_text_and_drops_the_queue(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    long_text = " ".join(f"word{n}" for n in range(60))
    ok(await chat(http, session_id, f"/slow 3 {long_text}"))
    ok(await chat(http, session_id, "never answered"))
    await asyncio.sleep(1)
    stopped = ok(await http.post("/api/interrupt", headers=sent))
    assert stopped["is_processing"] is False
    assert {"messages", "system_events", "title", "is_processing"} <= stopped.keys()

    after = await state(http, session_id)
    events = stopped["system_events"] + after["system_events"]
    assert events.count(INTERRUPTION) == 1, events
    assert after["is_processing"] is False
    assert senders(after) == ["user", "user", "agent"]
    partial = after["messages"][2]["content"]
    full = f"You said: {long_text}"
    assert partial.startswith("You said: word0")
    assert full.startswith(partial)
    assert len(partial) < len(full)

    await asyncio.sleep(0.5)
    later = await state(http, session_id)
    assert senders(later) == ["user", "user", "agent"]  # the queued message was dropped
    assert later["is_processing"] is False
    assert INTERRUPTION in ok(await http.get("/api/events", headers=sent))


async def test_interrupt_on_an_idle_session_is_a_no_op(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    before = await chat_and_wait(http, session_id, "all done")
    snapshot = ok(await http.post("/api/interrupt", headers=sent))
    assert snapshot["is_processing"] is False
    assert [m["content"] for m in snapshot["messages"]] == [
        m["content"] for m in before["messages"]
    ]
    assert INTERRUPTION not in snapshot["system_events"]
    assert INTERRUPTION not in ok(await http.get("/api/events", headers=sent))


@pytest.mark.parametrize("session_id", [None, "not-a-uuid"], ids=["missing", "bad"])
async def test_interrupt_needs_a_uuid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await http.post("/api/interrupt", headers=headers(session_id)), 400)


# -- POST /api/system --------------------------------------------------------------------


async def test_system_message_is_echoed_and_stored(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    response = await http.post(
        "/api/system", params={"message": "wallet connected"}, headers=headers(session_id)
    )
    assert ok(response) == {"res": "wallet connected"}
    snapshot = await state(http, session_id)
    stored = [m for m in snapshot["messages"] if m["sender"] == "system"]
    assert [m["content"] for m in stored] == ["wallet connected"]
    assert_legacy_message(stored[0])
    assert stored[0]["tool_result"] is None


@pytest.mark.parametrize(
    ("path", "params"),
    [("/api/system", {"message": "hi"}), ("/api/control/model", {"rig": "builtin"})],
    ids=["system", "control-model"],
)
@pytest.mark.parametrize("session_id", [None, "not-a-uuid"], ids=["missing", "bad"])
async def test_session_header_is_required(
    http: httpx.AsyncClient, path: str, params: dict[str, str], session_id: str | None
) -> None:
    assert_error(await http.post(path, params=params, headers=headers(session_id)), 400)


async def test_system_needs_a_message(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    assert_error(await http.post("/api/system", headers=headers(session_id)), 400)


async def test_system_json_with_a_type_is_published_on_updates(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    message = json.dumps({"type": "wallet_tx_request", "payload": {"to": "0xabc123", "value": 7}})
    async with updates(http, session_id) as stream:
        response = await http.post(
            "/api/system", params={"message": message}, headers=headers(session_id)
        )
        assert "res" in ok(response)
        [event] = await stream.wait_for_type("wallet_tx_request")
    assert event["session_id"] == session_id
    assert "0xabc123" in json.dumps(event)  # the payload travels with it
    snapshot = await state(http, session_id)
    assert any(
        m["sender"] == "system" and "wallet_tx_request" in m["content"]
        for m in snapshot["messages"]
    ), snapshot["messages"]


# -- GET /api/events ----------------------------------------------------------------------


async def test_events_count(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    sent = headers(session_id)
    await chat_and_wait(http, session_id, "/fail first failure")
    await chat_and_wait(http, session_id, "/fail second failure")
    everything = ok(await http.get("/api/events", headers=sent))
    assert isinstance(everything, list)
    assert len(everything) >= 2
    one = ok(await http.get("/api/events", params={"count": "1"}, headers=sent))
    assert isinstance(one, list)
    assert len(one) == 1
    assert one[0] in everything


@pytest.mark.parametrize("session_id", [None, "not-a-uuid"], ids=["missing", "bad"])
async def test_events_needs_a_uuid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await http.get("/api/events", headers=headers(session_id)), 400)


# -- control ------------------------------------------------------------------------------


async def test_control_models_lists_the_apps_models(
    http: httpx.AsyncClient, alpha_cli_key: str
) -> None:
    assert ok(await http.get("/api/control/models")) == ["builtin"]
    alpha = await http.get(
        "/api/control/models", params={"app": "alpha"}, headers=headers(key=alpha_cli_key)
    )
    assert ok(alpha) == ["builtin", "builtin-large"]


async def test_control_model_selects_the_sessions_model(
    http: httpx.AsyncClient, alpha_cli_key: str
) -> None:
    session_id, key = new_id(), alpha_cli_key
    await create_session(http, session_id, key=key, app="alpha")
    response = await http.post(
        "/api/control/model",
        params={"rig": "builtin-large", "app": "alpha"},
        headers=headers(session_id, key),
    )
    assert ok(response) == {"success": True, "rig": "builtin-large", "created": False}
    chosen = await graphql(
        http, "query($s: ID!) { session(id: $s) { model } }", key=key, s=session_id
    )
    assert chosen["session"]["model"] == "builtin-large"


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


async def test_list_sessions_limit_defaults_to_50_and_caps_at_200(
    http: httpx.AsyncClient,
) -> None:
    wallet = new_wallet()
    ids = [new_id() for _ in range(201)]
    for start in range(0, len(ids), 20):
        await asyncio.gather(
            *(create_session(http, i, public_key=wallet) for i in ids[start : start + 20])
        )
    default = ok(await http.get("/api/sessions", params={"public_key": wallet}))
    assert len(default) == 50
    most = ok(await http.get("/api/sessions", params={"public_key": wallet, "limit": "200"}))
    assert len(most) == 200
    assert {s["session_id"] for s in most} <= set(ids)
    beyond = await http.get("/api/sessions", params={"public_key": wallet, "limit": "1000"})
    if beyond.status_code == 200:
        assert len(beyond.json()) == 200  # capped
    else:
        assert_error(beyond, 400)


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


# -- GET /api/updates (Server-Sent Events) ---------------------------------------------------


async def test_updates_is_an_event_stream_and_may_open_before_the_session_exists(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert "no-cache" in stream.response.headers.get("cache-control", "")
        assert stream.response.headers.get("x-accel-buffering") == "no"
        await create_session(http, session_id)
        renamed = await http.patch(
            f"/api/sessions/{session_id}",
            json={"title": "ETH price check"},
            headers=headers(session_id),
        )
        ok(renamed)
        [event] = await stream.wait_for_type("title_changed")
    assert event["type"] == "title_changed"
    assert event["session_id"] == session_id
    assert event["new_title"] == "ETH price check"
    assert stream.ids[stream.events.index(event)], "every event has an id: line"


async def test_updates_carry_only_this_sessions_events(http: httpx.AsyncClient) -> None:
    mine, other = new_id(), new_id()
    await create_session(http, mine)
    await create_session(http, other)
    async with updates(http, mine) as stream:
        ok(
            await http.patch(
                f"/api/sessions/{other}", json={"title": "Not mine"}, headers=headers(other)
            )
        )
        ok(await http.patch(f"/api/sessions/{mine}", json={"title": "Mine"}, headers=headers(mine)))
        await stream.wait_for_type("title_changed")
        await asyncio.sleep(0.3)
    assert [(e["type"], e["session_id"], e.get("new_title")) for e in stream.events] == [
        ("title_changed", mine, "Mine")
    ]


async def test_updates_carry_tool_events_and_only_documented_types(
    http: httpx.AsyncClient,
) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        ok(await chat(http, session_id, '/tool calculator {"expression": "6*7"}'))
        [complete] = await stream.wait_for_type("tool_complete")
        await until_idle(http, session_id)
        await stream.wait_for_type("title_changed")  # generated before processing ends
        await asyncio.sleep(0.3)
    updates_ = stream.of_type("tool_update")
    assert updates_, stream.events
    update = updates_[0]
    for event in (update, complete):
        assert event["session_id"] == session_id
        assert event["tool_name"] == "calculator"
        assert {"id", "call_id", "result"} <= event.keys()
    assert update["result"]["status"] == "running"
    assert complete["result"] == {"expression": "6*7", "value": 42}
    assert complete["id"] == update["id"]
    assert complete["call_id"] == update["call_id"]
    assert stream.events.index(update) < stream.events.index(complete)
    assert {e["type"] for e in stream.events} <= SSE_TYPES, [e["type"] for e in stream.events]
    assert all(e["session_id"] == session_id for e in stream.events)
    assert all(stream.ids), stream.ids
    assert set(stream.data_lines) == {1}, stream.data_lines  # one `data:` line per event
    [title] = stream.of_type("title_changed")
    assert title["new_title"] == "Using calculator"


async def test_updates_carry_system_notices(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        ok(await chat(http, session_id, "/fail boom"))
        [notice] = await stream.wait_for_type("system_notice")
    assert notice["session_id"] == session_id
    assert "boom" in notice["message"]
    assert {e["type"] for e in stream.events} <= SSE_TYPES


async def test_updates_replay_missed_events_after_last_event_id(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    await create_session(http, session_id)
    sent = headers(session_id)

    async def rename(title: str) -> None:
        ok(await http.patch(f"/api/sessions/{session_id}", json={"title": title}, headers=sent))

    async with updates(http, session_id) as first:
        await rename("Title one")
        [seen] = await first.wait_for_type("title_changed")
    last_id = first.ids[first.events.index(seen)]
    assert last_id, "the event had no id: line"

    await rename("Title two")  # missed while disconnected
    await rename("Title three")

    async with updates(http, session_id, last_event_id=last_id) as second:
        await second.wait_for_type("title_changed", 2)
        await rename("Title four")  # live after the replay
        await second.wait_for_type("title_changed", 3)
        await asyncio.sleep(0.5)  # room for a duplicate to show up
    titles = [e["new_title"] for e in second.of_type("title_changed")]
    assert titles == ["Title two", "Title three", "Title four"]
    ids = [second.ids[second.events.index(e)] for e in second.of_type("title_changed")]
    assert all(ids), ids
    assert len(set(ids)) == 3, ids
    assert last_id not in ids


async def test_updates_send_keep_alive_comments(http: httpx.AsyncClient) -> None:
    session_id = new_id()
    async with updates(http, session_id) as stream:
        await asyncio.sleep(16.5)  # an idle stream, longer than one keep-alive period
        ended = asyncio.get_running_loop().time()
    assert stream.comments, "no comment line on an idle stream"
    marks = [stream.opened_at, *stream.comment_times, ended]
    gaps = [later - earlier for earlier, later in pairwise(marks)]
    assert max(gaps) <= 15.5, gaps  # a comment at least every 15 s
    assert stream.events == []


@pytest.mark.parametrize("session_id", [None, "not-a-uuid"], ids=["missing", "bad"])
async def test_updates_need_a_uuid_session_header(
    http: httpx.AsyncClient, session_id: str | None
) -> None:
    assert_error(await updates_status(http, headers(session_id)), 400)


async def test_updates_report_a_failing_tool(http: httpx.AsyncClient, gamma_cli_key: str) -> None:
    session_id, key = new_id(), gamma_cli_key
    async with updates(http, session_id, key, "gamma") as stream:
        ok(await chat(http, session_id, "/tool explode {}", key, "gamma"))
        [complete] = await stream.wait_for_type("tool_complete")
    assert complete["session_id"] == session_id
    assert complete["tool_name"] == "explode"
    assert "kaboom" in complete["result"]["error"]
    done, _ = await until_idle(http, session_id, key, "gamma")
    [tool] = [m for m in done["messages"] if m["tool_result"] is not None]
    assert tool["tool_result"][0] == "explode"
    assert "kaboom" in tool["tool_result"][1]
