"""Shared by the secrets, provider-key and simulator tests: their apps, the server
key, and readers of everything a server stored (database rows, Redis) to search it
for a value that must not be there."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from tortoise import connections

from settings import Settings, load_apps
from tests.conftest import APPS_TOML

# A server key for tests (at least 32 characters).
SECRET_KEY = "confab-tests-secret-key-0123456789abcdef"

# The shared test apps plus the ones these tests need. Kept here (not in the shared
# apps file) so other tests' apps stay exactly as they were.
VAULT_APPS_TOML = (
    APPS_TOML
    + """
# The default app with the tool that uses secrets (keyless tests).
[apps.default]
display_name = "Default"
[apps.default.tools.custom]
use_secret = "tests.sample_tools:use_secret"

# Legacy-client credentials: a tool that uses secrets, a transaction simulator.
[apps.vault]
display_name = "Vault"
simulator = "tests.sample_simulator:simulate"
[apps.vault.tools]
enabled = ["calculator", "current_time"]
[apps.vault.tools.custom]
use_secret = "tests.sample_tools:use_secret"

# An app whose clients may not bring their own provider keys.
[apps.sealed]
display_name = "Sealed"
provider_keys = false
"""
)


def vault_apps_file(directory: Path) -> Path:
    path = directory / "vault-apps.toml"
    path.write_text(VAULT_APPS_TOML)
    return path


def vault_settings(base: Settings, directory: Path, **overrides: Any) -> Settings:
    """The conftest settings (SQLite or PostgreSQL) with these apps and the key."""
    path = vault_apps_file(directory)
    changes: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "config_file": str(path),
        "apps": load_apps(path),
        **overrides,
    }
    return base.with_overrides(**changes)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def use_secret(token: str, *, fail: bool = False) -> str:
    """The chat message that makes the builtin model call the `use_secret` tool."""
    arguments: dict[str, Any] = {"token": token}
    if fail:
        arguments["fail"] = True
    return f"/tool use_secret {json.dumps(arguments)}"


def tool_output(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The last tool message of a snapshot: {"result": <its JSON>} or {"error": text}
    (the legacy shape holds the result's JSON, or the error's text)."""
    tool_messages = [m for m in snapshot["messages"] if m.get("tool_result")]
    assert tool_messages, snapshot["messages"]
    name, output = tool_messages[-1]["tool_result"]
    assert name == "use_secret", tool_messages[-1]
    try:
        return {"result": json.loads(output)}
    except json.JSONDecodeError:
        return {"error": output}


def forms_of(value: str) -> list[bytes]:
    """How a value could appear in stored bytes: as text (UTF-8, JSON-escaped) or
    as the hex of its bytes (a clear value in a binary column)."""
    raw = value.encode()
    escaped = json.dumps(value)[1:-1].encode()
    return [raw, escaped, raw.hex().encode()]


def assert_absent(value: str, haystack: bytes, where: str) -> None:
    for form in forms_of(value):
        assert form not in haystack, f"the secret value appears in {where}"


async def sql_dump() -> bytes:
    """Every row of every table of the app's database (in-process tests)."""
    client = connections.get("default")
    dialect = client.capabilities.dialect
    if dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        query = (
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    tables = [str(row["name"]) for row in await client.execute_query_dict(query)]
    assert "client_secrets" in tables, tables
    parts: list[bytes] = []
    for table in tables:
        for row in await client.execute_query_dict(f'SELECT * FROM "{table}"'):
            parts.append(table.encode() + b": " + _row_bytes(row))
    return b"\n".join(parts)


def _row_bytes(row: dict[str, Any]) -> bytes:
    parts = []
    for value in row.values():
        if isinstance(value, bytes | bytearray | memoryview):
            parts.append(bytes(value) + b" " + bytes(value).hex().encode())
        else:
            parts.append(str(value).encode())
    return b" | ".join(parts)


async def postgres_dump(url: str) -> bytes:
    """Every row of every table of a PostgreSQL database, as text (a real server)."""
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=5)
    try:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        names = [str(t["table_name"]) for t in tables]
        assert "client_secrets" in names, names
        parts: list[bytes] = []
        for name in names:
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{name}" t')
            parts.extend(f"{name}: {row['row']}".encode() for row in rows)
        return b"\n".join(parts)
    finally:
        await conn.close()


async def redis_dump(url: str) -> bytes:
    """Every key and value of a Redis database (strings, streams, hashes, lists, sets)."""
    client = aioredis.Redis.from_url(url)
    readers: dict[str, Callable[[bytes], Awaitable[object]]] = {
        "string": client.get,
        "stream": client.xrange,
        "hash": client.hgetall,
        "list": lambda key: client.lrange(key, 0, -1),
        "set": client.smembers,
        "zset": lambda key: client.zrange(key, 0, -1),
    }
    parts: list[bytes] = []
    try:
        async for key in client.scan_iter(count=500):
            kind = _flatten(await client.type(key)).decode()
            parts.append(_flatten(key))
            if kind in readers:
                parts.append(_flatten(await readers[kind](key)))
    finally:
        await client.aclose()
    return b"\n".join(parts)


def _flatten(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict):
        return b" ".join(_flatten(k) + b"=" + _flatten(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return b" ".join(_flatten(item) for item in value)
    return str(value).encode()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    """Until `check()` holds (polled), or fail naming `what`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.1)


def live_vault_env(live_env: dict[str, str], directory: Path) -> dict[str, str]:
    """A real server's environment (PostgreSQL, Redis) with these apps, the server
    key, and every log line (debug) so tests can search the log."""
    return {
        **live_env,
        "CONFAB_CONFIG": str(vault_apps_file(directory)),
        "CONFAB_SECRET_KEY": SECRET_KEY,
        "CONFAB_LOG_LEVEL": "debug",
    }
