"""Building blocks of the REST layer's OpenAPI document: parameters, errors,
operations (rest/openapi.py assembles the paths)."""

from __future__ import annotations

from typing import Any

# A UUID, or any opaque text id (runtime/session_ids.py).
SESSION_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"}
WALLET = {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
TITLE = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}
SESSION_HEADER = {
    "name": "X-Session-Id",
    "in": "header",
    "required": True,
    "description": "The session's id, chosen by the client: usually a UUID, or any "
    "1 to 128 printable ASCII characters without spaces.",
    "schema": SESSION_ID,
}
KEY_HEADERS = [
    {
        "name": "AOMI-APP-KEY",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "App key (needed for any app but `default`).",
    },
    {
        "name": "X-API-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "App key, as older clients send it.",
    },
]
APP_QUERY = [
    {
        "name": "app",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "The app (default `default`).",
    },
    {
        "name": "namespace",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Alias of `app`.",
    },
]
PATH_ID = {"name": "session_id", "in": "path", "required": True, "schema": SESSION_ID}


def error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


ERRORS = {
    "400": error("Bad or missing parameters"),
    "401": error("Missing, unknown or revoked app key"),
    "403": error("The key does not cover the app"),
    "404": error("Unknown session"),
    "409": error("The session id is taken by another app"),
    "413": error("Message or request body too large"),
    "429": {
        **error("Queue full, or too many failed key checks from this address"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    "501": error("The app names no transaction simulator"),
    "502": error("The app's simulator failed"),
    "503": error("A backing service is unavailable (or CONFAB_SECRET_KEY is not set)"),
    "504": error("The app's simulator did not answer in time"),
}


def ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def operation(
    summary: str,
    ok: dict[str, Any],
    parameters: list[dict[str, Any]],
    errors: tuple[str, ...],
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [*parameters, *KEY_HEADERS, *APP_QUERY],
        "responses": {"200": ok, **{code: ERRORS[code] for code in errors}},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    return operation


def query(name: str, required: bool, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


AUTH = ("400", "401", "403", "404", "503")
# What the edge (edge/) and the key check may answer to any request: a body over its
# route's limit, and an address that sent too many unknown keys.
ANY_REQUEST = ("413", "429")
USER_STATE = query(
    "user_state", False, {"type": "string"}, "URL-encoded JSON: nested or flat wallet state"
)
CLIENT_ID = query(
    "client_id",
    False,
    {"type": "string"},
    "The legacy client: the session then uses its secrets and provider keys",
)
