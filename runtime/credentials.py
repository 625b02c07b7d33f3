"""Where a request carries its app key and app selector (any transport's headers),
and which client address it comes from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEY_HEADERS = ("aomi-app-key", "x-api-key")
APP_HEADER = "x-confab-app"


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """`AOMI-APP-KEY`, `X-API-Key` or `Authorization: Bearer <key>`; header names
    are case-insensitive (Starlette's `Headers` and WebSocket payloads alike)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for name in KEY_HEADERS:
        value = lowered.get(name, "").strip()
        if value:
            return value
    scheme, _, token = lowered.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def app_from_request(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The app asked for: query `app` (or its alias `namespace`), or `X-Confab-App`."""
    for value in (query.get("app"), query.get("namespace"), headers.get(APP_HEADER)):
        if value and value.strip():
            return value.strip()
    return None


def client_host(scope: Mapping[str, Any]) -> str | None:
    """The peer's address (`scope["client"][0]`), which failed keys are counted by.

    Never `X-Forwarded-For`: anyone can send it. Behind a trusted proxy, let the
    server rewrite the peer (uvicorn's `--proxy-headers` and `--forwarded-allow-ips`).
    """
    client = scope.get("client")
    if not client:
        return None
    host = client[0]
    return host if isinstance(host, str) and host else None
