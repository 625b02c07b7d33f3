"""Logs as an operator reads them: one JSON object per line, one request followed
by its id from the access line through the turn to the model call and the tool;
"listening" once the port is bound, and a port already taken is one line and
exit code 2."""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import new_id
from tests.live import run_cli
from tests.processes import ServerProcess, running
from tests.rest_client import chat, ok, until_idle

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


@pytest.fixture(scope="module")
def json_server(
    live_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    env = {**live_env, "CONFAB_LOG_FORMAT": "json", "CONFAB_LOG_LEVEL": "debug"}
    with running(env, tmp_path_factory.mktemp("json-logs") / "server.log") as process:
        yield process


def lines(process: ServerProcess) -> list[dict[str, Any]]:
    """Every line of the log, each of which must be one JSON object."""
    parsed = []
    for number, line in enumerate(process.log().splitlines(), 1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line[:300]}") from None
        assert isinstance(entry, dict), line
        assert {"ts", "level", "logger", "message", "request_id"} <= entry.keys(), entry
        parsed.append(entry)
    return parsed


async def test_one_request_followed_through_its_turn(json_server: ServerProcess) -> None:
    rid = "test-" + uuid.uuid4().hex
    session_id = new_id()
    async with httpx.AsyncClient(base_url=json_server.url, timeout=10) as http:
        response = await http.post(
            "/api/chat",
            params={"message": '/tool calculator {"expression": "6*7"}'},
            headers={"X-Session-Id": session_id, "X-Request-Id": rid},
        )
        ok(response)
        assert response.headers["x-request-id"] == rid
        await until_idle(http, session_id)

    mine = [e for e in lines(json_server) if e["request_id"] == rid]
    ended = [e for e in mine if e["logger"] == "runtime.turns.scheduler"]
    assert any(e["message"].endswith(" done") for e in ended), "turn end not logged with the id"
    access = [e for e in mine if e["logger"] == "confab.access"]
    assert len(access) == 1, access
    assert access[0]["path"] == "/api/chat"
    assert access[0]["route"] == "/api/chat"
    assert access[0]["status"] == 200
    assert access[0]["app"] == "default"
    turn = [e for e in mine if e["logger"] == "runtime.turns.scheduler"]
    assert any(e["message"].endswith("started") for e in turn), turn
    assert all(e["session_id"] == session_id for e in turn), turn
    model = [e for e in mine if e["message"].startswith("model call")]
    assert len(model) == 2, model  # the tool round, then the answer
    assert all(e["session_id"] == session_id and e["backend"] == "builtin" for e in model)
    tools = [e for e in mine if e.get("tool") == "calculator"]
    assert tools, "the tool run was not logged with the request's id"
    assert tools[0]["outcome"] == "ok", tools
    # Its database statements carry the id too (debug level).
    assert any(e["logger"].startswith("tortoise") for e in mine)


async def test_a_request_without_an_id_gets_one(json_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=json_server.url, timeout=10) as http:
        response = await http.get("/healthz")
        made = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        unsafe = await http.get("/healthz", headers={"X-Request-Id": "bad id\twith spaces"})
        assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
        long = await http.get("/healthz", headers={"X-Request-Id": "a" * 500})
        assert re.fullmatch(r"[0-9a-f]{32}", long.headers["x-request-id"])
    access = [e for e in lines(json_server) if e["logger"] == "confab.access"]
    assert any(e["request_id"] == made and e["path"] == "/healthz" for e in access)


async def test_no_reprs_no_secrets_and_listening_once(
    json_server: ServerProcess, live_env: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=json_server.url, timeout=10) as http:
        session_id = new_id()
        ok(await chat(http, session_id, "hello"))
        await until_idle(http, session_id)
    entries = lines(json_server)
    for entry in entries:
        text = json.dumps(entry)
        assert not ADDRESS.search(entry["message"]), entry["message"][:300]
        assert live_env["CONFAB_SECRET_KEY"] not in text
    listening = [e for e in entries if e["message"].startswith("Confab listening on")]
    assert len(listening) == 1, listening
    assert f":{json_server.port} " in listening[0]["message"]
    assert "event bus: redis://" in listening[0]["message"]
    # Logged once the server accepts: after the application's start-up.
    order = [e["message"] for e in entries]
    assert order.index("Application startup complete.") < order.index(listening[0]["message"])


def test_port_taken_is_one_line_and_exit_code_2(live_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(live_env, "--port", str(port))
    assert result.returncode == 2, result
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(output) == 1, output
    assert f"127.0.0.1:{port}" in output[0]
    assert "already in use" in output[0]
    assert "listening" not in output[0].lower()
