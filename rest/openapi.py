"""The OpenAPI 3.1 document of the REST compatibility layer (`/api/openapi.json`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.openapi_schemas import SCHEMAS

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


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


ERRORS = {
    "400": _error("Bad or missing parameters"),
    "401": _error("Missing, unknown or revoked app key"),
    "403": _error("The key does not cover the app"),
    "404": _error("Unknown session"),
    "409": _error("The session id is taken by another app"),
    "413": _error("Message or request body too large"),
    "429": {
        **_error("Queue full, or too many failed key checks from this address"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    "503": _error("A backing service is unavailable"),
}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(
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


def _query(name: str, required: bool, schema: dict[str, Any], description: str) -> dict[str, Any]:
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
USER_STATE = _query(
    "user_state", False, {"type": "string"}, "URL-encoded JSON: nested or flat wallet state"
)
CLIENT_ID = _query("client_id", False, {"type": "string"}, "Ignored; accepted for compatibility")


def document(apps: list[str]) -> dict[str, Any]:
    """The document for a server whose configured apps are `apps` (the `app` and
    `namespace` parameters take exactly those names)."""
    base = _document()
    app_schema = {"type": "string", "enum": apps}
    for operations in base["paths"].values():
        for operation in operations.values():
            operation["parameters"] = [
                {**p, "schema": app_schema} if p["name"] in ("app", "namespace") else p
                for p in operation["parameters"]
            ]
            for code in ANY_REQUEST:
                operation["responses"].setdefault(code, ERRORS[code])
    return base


def _document() -> dict[str, Any]:
    snapshot = _ok(_ref("StateResponse"), "The session snapshot")
    summary = _ok(_ref("SessionSummary"))
    chat = _operation(
        "Send a message (creates the session); the assistant answers in the background",
        snapshot,
        [
            SESSION_HEADER,
            _query("message", False, {"type": "string"}, "The message (or a JSON body)"),
            _query("public_key", False, WALLET, "Bind this wallet"),
            USER_STATE,
            CLIENT_ID,
        ],
        ("400", "401", "403", "404", "409", "413", "429", "503"),
        body={
            "type": "object",
            "properties": {"message": {"type": "string"}, "text": {"type": "string"}},
        },
    )
    state = _operation(
        "The session snapshot (an unknown session reads as empty)",
        snapshot,
        [SESSION_HEADER, USER_STATE, CLIENT_ID],
        AUTH,
    )
    updates = {
        "summary": "Server-Sent Events of the session (title_changed, tool_update, "
        "tool_complete, system_notice and custom types)",
        "parameters": [
            SESSION_HEADER,
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
            *KEY_HEADERS,
            *APP_QUERY,
        ],
        "responses": {
            "200": {
                "description": "An event stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **{code: ERRORS[code] for code in AUTH},
        },
    }
    paths: dict[str, Any] = {
        "/api/sessions": {
            "post": _operation(
                "Create a session (idempotent)",
                _ok(_ref("CreatedSession")),
                [SESSION_HEADER],
                ("400", "401", "403", "409", "503"),
                body={
                    "type": "object",
                    "properties": {"public_key": {"oneOf": [WALLET, {"type": "null"}]}},
                },
            ),
            "get": _operation(
                "Sessions bound to a wallet, newest activity first",
                _ok({"type": "array", "items": _ref("SessionSummary")}),
                [
                    _query("public_key", True, WALLET, "EVM address"),
                    _query(
                        "limit",
                        False,
                        {"type": "integer", "minimum": 1, "maximum": 200},
                        "Default 50",
                    ),
                ],
                ("400", "401", "403", "503"),
            ),
        },
        "/api/sessions/{session_id}": {
            "get": _operation("One session", summary, [PATH_ID], AUTH),
            "patch": _operation(
                "Rename (a user title is never replaced by automatic titling)",
                _ok(_ref("RenamedSession")),
                [PATH_ID],
                AUTH,
                body={
                    "type": "object",
                    "properties": {"title": TITLE},
                    "required": ["title"],
                },
            ),
            "delete": _operation(
                "Delete the session, its threads and messages (`deleted: false` when "
                "there was none: idempotent)",
                _ok(
                    {
                        "type": "object",
                        "properties": {"deleted": {"type": "boolean"}},
                        "required": ["deleted"],
                    }
                ),
                [PATH_ID],
                AUTH,
            ),
        },
        "/api/sessions/{session_id}/archive": {
            "post": _operation("Archive", _ok(_ref("ArchiveState")), [PATH_ID], AUTH)
        },
        "/api/sessions/{session_id}/unarchive": {
            "post": _operation("Unarchive", _ok(_ref("ArchiveState")), [PATH_ID], AUTH)
        },
        "/api/chat": {"post": chat},
        "/api/thread/chat": {"post": chat},
        "/api/state": {"get": state},
        "/api/thread/state": {"get": state},
        "/api/interrupt": {
            "post": _operation(
                "Stop the running turn (partial text kept) and drop queued ones",
                snapshot,
                [SESSION_HEADER],
                AUTH,
            )
        },
        "/api/system": {
            "post": _operation(
                "Store a system message (creating the session, like chat): plain text is "
                "also a system notice; a JSON object with a `type` is published as that event",
                _ok(
                    {
                        "type": "object",
                        "properties": {"res": _ref("Message")},
                        "required": ["res"],
                    }
                ),
                [SESSION_HEADER, _query("message", False, {"type": "string"}, "The message")],
                AUTH,
                body={"type": "object", "properties": {"message": {"type": "string"}}},
            )
        },
        "/api/events": {
            "get": _operation(
                "System events, oldest first (does not move the snapshot cursor)",
                _ok({"type": "array", "items": _ref("SystemEvent")}),
                [
                    SESSION_HEADER,
                    _query(
                        "count",
                        False,
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "The most recent N",
                    ),
                ],
                AUTH,
            )
        },
        "/api/updates": {"get": updates},
        "/api/thread/updates": {"get": updates},
        "/api/control/models": {
            "get": _operation(
                "Models the caller's app offers",
                _ok({"type": "array", "items": {"type": "string"}}),
                [],
                ("400", "401", "403", "404", "503"),
            )
        },
        "/api/control/model": {
            "post": _operation(
                "Select the session's model",
                _ok(_ref("ModelSelected")),
                [SESSION_HEADER, _query("rig", True, {"type": "string"}, "A model name")],
                ("400", "401", "403", "404", "409", "503"),
            )
        },
        "/api/control/apps": {
            "get": _operation(
                "Apps the caller may use",
                _ok({"type": "array", "items": {"type": "string"}}),
                [],
                ("400", "401", "403", "404", "503"),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Confab REST compatibility layer",
            "version": "1.0.0",
            "description": "The documented /api endpoints of a hosted agent backend.",
        },
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }


async def openapi(request: Request) -> Response:
    state = request.app.state
    if not hasattr(state, "openapi"):
        state.openapi = document(request.app.state.runtime.apps.names())
    return JSONResponse(state.openapi)


routes = [Route("/openapi.json", openapi, methods=["GET"])]
