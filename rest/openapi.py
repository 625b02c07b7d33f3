"""The OpenAPI 3.1 document of the REST compatibility layer (`/api/openapi.json`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.openapi_clients import client_paths
from rest.openapi_parts import (
    ANY_REQUEST,
    APP_QUERY,
    AUTH,
    CLIENT_ID,
    ERRORS,
    KEY_HEADERS,
    PATH_ID,
    SESSION_HEADER,
    TITLE,
    USER_STATE,
    WALLET,
    ok,
    operation,
    query,
    ref,
)
from rest.openapi_schemas import SCHEMAS


def document(apps: list[str]) -> dict[str, Any]:
    """The document for a server whose configured apps are `apps` (the `app` and
    `namespace` parameters take exactly those names)."""
    base = _document()
    app_schema = {"type": "string", "enum": apps}
    for operations in base["paths"].values():
        for each in operations.values():
            each["parameters"] = [
                {**p, "schema": app_schema} if p["name"] in ("app", "namespace") else p
                for p in each["parameters"]
            ]
            for code in ANY_REQUEST:
                each["responses"].setdefault(code, ERRORS[code])
    return base


def _document() -> dict[str, Any]:
    snapshot = ok(ref("StateResponse"), "The session snapshot")
    summary = ok(ref("SessionSummary"))
    chat = operation(
        "Send a message (creates the session); the assistant answers in the background",
        snapshot,
        [
            SESSION_HEADER,
            query("message", False, {"type": "string"}, "The message (or a JSON body)"),
            query("public_key", False, WALLET, "Bind this wallet"),
            USER_STATE,
            CLIENT_ID,
        ],
        ("400", "401", "403", "404", "409", "413", "429", "503"),
        body={
            "type": "object",
            "properties": {"message": {"type": "string"}, "text": {"type": "string"}},
        },
    )
    state = operation(
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
            "post": operation(
                "Create a session (idempotent)",
                ok(ref("CreatedSession")),
                [SESSION_HEADER],
                ("400", "401", "403", "409", "503"),
                body={
                    "type": "object",
                    "properties": {"public_key": {"oneOf": [WALLET, {"type": "null"}]}},
                },
            ),
            "get": operation(
                "Sessions bound to a wallet, newest activity first",
                ok({"type": "array", "items": ref("SessionSummary")}),
                [
                    query("public_key", True, WALLET, "EVM address"),
                    query(
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
            "get": operation("One session", summary, [PATH_ID], AUTH),
            "patch": operation(
                "Rename (a user title is never replaced by automatic titling)",
                ok(ref("RenamedSession")),
                [PATH_ID],
                AUTH,
                body={
                    "type": "object",
                    "properties": {"title": TITLE},
                    "required": ["title"],
                },
            ),
            "delete": operation(
                "Delete the session, its threads and messages (`deleted: false` when "
                "there was none: idempotent)",
                ok(
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
            "post": operation("Archive", ok(ref("ArchiveState")), [PATH_ID], AUTH)
        },
        "/api/sessions/{session_id}/unarchive": {
            "post": operation("Unarchive", ok(ref("ArchiveState")), [PATH_ID], AUTH)
        },
        "/api/sessions/{session_id}/export": {
            "get": operation(
                "Extension: the session as one document (JSON `confab.session/2`, "
                "docs/export-format.md, or Markdown), streamed",
                {
                    "description": "The document",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/markdown": {"schema": {"type": "string"}},
                    },
                },
                [
                    PATH_ID,
                    query(
                        "format",
                        False,
                        {"type": "string", "enum": ["json", "markdown"], "default": "json"},
                        "json (the default) or markdown",
                    ),
                ],
                AUTH,
            )
        },
        "/api/search": {"get": _search()},
        "/api/chat": {"post": chat},
        "/api/thread/chat": {"post": chat},
        "/api/state": {"get": state},
        "/api/thread/state": {"get": state},
        "/api/interrupt": {
            "post": operation(
                "Stop the running turn (partial text kept) and drop queued ones",
                snapshot,
                [SESSION_HEADER],
                AUTH,
            )
        },
        "/api/system": {
            "post": operation(
                "Store a system message (creating the session, like chat): plain text is "
                "also a system notice; a JSON object with a `type` is published as that event",
                ok(
                    {
                        "type": "object",
                        "properties": {"res": ref("Message")},
                        "required": ["res"],
                    }
                ),
                [SESSION_HEADER, query("message", False, {"type": "string"}, "The message")],
                AUTH,
                body={"type": "object", "properties": {"message": {"type": "string"}}},
            )
        },
        "/api/events": {
            "get": operation(
                "System events, oldest first (does not move the snapshot cursor)",
                ok({"type": "array", "items": ref("SystemEvent")}),
                [
                    SESSION_HEADER,
                    query(
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
            "get": operation(
                "Models the caller's app offers",
                ok({"type": "array", "items": {"type": "string"}}),
                [],
                ("400", "401", "403", "404", "503"),
            )
        },
        "/api/control/model": {
            "post": operation(
                "Select the session's model",
                ok(ref("ModelSelected")),
                [SESSION_HEADER, query("rig", True, {"type": "string"}, "A model name")],
                ("400", "401", "403", "404", "409", "503"),
            )
        },
        "/api/control/apps": {
            "get": operation(
                "Apps the caller may use",
                ok({"type": "array", "items": {"type": "string"}}),
                [],
                ("400", "401", "403", "404", "503"),
            )
        },
    }
    paths.update(client_paths())
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


def _search() -> dict[str, Any]:
    text = {"type": "string"}
    return operation(
        "Extension: full-text search over the caller's sessions (message text, tool names, "
        "titles), best first; docs/search.md. Without a key, public_key is required",
        ok(ref("SearchResults")),
        [
            query("q", True, {"type": "string", "maxLength": 256}, 'words, "a phrase", or, -word'),
            query("limit", False, {"type": "integer", "minimum": 1, "maximum": 50}, "Default 20"),
            query("cursor", False, text, "The previous page's next_cursor"),
            query("public_key", False, WALLET, "Only sessions bound to this wallet"),
            query("thread_id", False, {"type": "string", "format": "uuid"}, "Only this thread"),
            query(
                "role",
                False,
                {"type": "string", "enum": ["user", "assistant", "system", "tool"]},
                "Only messages of this role",
            ),
            query(
                "archived",
                False,
                {"type": "string", "enum": ["true", "false"]},
                "Only (un)archived",
            ),
            query("since", False, {"type": "string", "format": "date-time"}, "Created at or after"),
            query("until", False, {"type": "string", "format": "date-time"}, "Created before"),
            query("all_versions", False, {"enum": ["true", "false"]}, "Also off-path versions"),
        ],
        ("400", "401", "403", "503"),
    )
