"""The OpenAPI paths of what legacy clients entrust to the server: secrets, provider
keys, and the transaction simulator (docs/secrets.md)."""

from __future__ import annotations

from typing import Any

from rest.openapi_parts import AUTH, SESSION_HEADER, ok, operation, query

CLIENT = query("client_id", True, {"type": "string", "minLength": 1}, "The legacy client's id")
SESSION_CLIENT = query(
    "client_id", False, {"type": "string"}, "The client (default: the session's own client)"
)
PROVIDER_KEY = {
    "type": "object",
    "properties": {
        "provider": {"type": "string"},
        "key_prefix": {"type": "string"},
        "label": {"type": "string"},
        "is_active": {"type": "boolean"},
    },
    "required": ["provider", "key_prefix", "label", "is_active"],
}
VAULT = (*AUTH, "503")  # 503 also without CONFAB_SECRET_KEY
STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _answer(field: str, schema: dict[str, Any]) -> dict[str, Any]:
    return ok({"type": "object", "properties": {field: schema}, "required": [field]})


def client_paths() -> dict[str, Any]:
    return {
        "/api/secrets": {
            "post": operation(
                "Store a client's secrets; the answer holds their handles, never values",
                ok(
                    {
                        "type": "object",
                        "properties": {
                            "handles": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            }
                        },
                        "required": ["handles"],
                    }
                ),
                [],
                VAULT,
                body={
                    "type": "object",
                    "properties": {
                        "client_id": {"type": "string"},
                        "secrets": STRINGS,
                    },
                    "required": ["client_id", "secrets"],
                },
            ),
            "delete": operation(
                "Delete all of a client's secrets",
                ok(
                    {
                        "type": "object",
                        "properties": {"cleared": {"type": "boolean"}},
                        "required": ["cleared"],
                    }
                ),
                [CLIENT],
                VAULT,
            ),
        },
        "/api/secrets/{name}": {
            "delete": operation(
                "Delete one of a client's secrets",
                ok(
                    {
                        "type": "object",
                        "properties": {"deleted": {"type": "boolean"}},
                        "required": ["deleted"],
                    }
                ),
                [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    CLIENT,
                ],
                VAULT,
            )
        },
        "/api/control/provider-keys": {
            "get": operation(
                "The session's client's provider keys (prefixes only)",
                ok(
                    {
                        "type": "object",
                        "properties": {"provider_keys": {"type": "array", "items": PROVIDER_KEY}},
                        "required": ["provider_keys"],
                    }
                ),
                [SESSION_HEADER, SESSION_CLIENT],
                VAULT,
            ),
            "post": operation(
                "Save the session's client's key for a provider (bring your own key)",
                ok({"type": "object", "properties": {"key": PROVIDER_KEY}, "required": ["key"]}),
                [SESSION_HEADER, SESSION_CLIENT],
                VAULT,
                body={
                    "type": "object",
                    "properties": {
                        "provider": {"type": "string"},
                        "api_key": {"type": "string"},
                        "label": {"type": "string"},
                    },
                    "required": ["provider", "api_key"],
                },
            ),
        },
        "/api/control/provider-keys/{provider}": {
            "delete": operation(
                "Delete the session's client's key for a provider",
                ok(
                    {
                        "type": "object",
                        "properties": {"deleted": {"type": "boolean"}},
                        "required": ["deleted"],
                    }
                ),
                [
                    {
                        "name": "provider",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    SESSION_HEADER,
                    SESSION_CLIENT,
                ],
                VAULT,
            )
        },
        "/api/simulate": {
            "post": operation(
                "Simulate transactions with the app's simulator (501 when it names none)",
                ok(
                    {
                        "type": "object",
                        "properties": {"result": {"type": "object"}},
                        "required": ["result"],
                    }
                ),
                [SESSION_HEADER],
                (*AUTH, "501", "502", "504"),
                body={
                    "type": "object",
                    "properties": {
                        "transactions": {"type": "array", "items": {"type": "object"}},
                        "from": {"type": "string"},
                        "chain_id": {"type": "integer"},
                    },
                    "required": ["transactions"],
                },
            )
        },
    }
