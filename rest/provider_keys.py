"""`/api/control/provider-keys`: a client's own model provider keys (bring your own
key), for the client of the session named by `X-Session-Id`.

The client is the session's (set by the `client_id` of its chat and state
requests), or the `client_id` query parameter when the request has one. The app is
the session's; another app's session is not found. An app with
`provider_keys = false` answers 403; without CONFAB_SECRET_KEY, 503. A key is
never returned: only its first characters (`key_prefix`).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import (
    by_method,
    caller_and_session,
    client_id_param,
    header_session_id,
    json_body,
    runtime_of,
)
from runtime import vault
from runtime.errors import Forbidden
from runtime.vault.provider_keys import ProviderKeys


@dataclass(frozen=True, slots=True)
class Scope:
    app: str
    client_id: str
    keys: ProviderKeys


async def scope_of(request: Request) -> Scope:
    session_id = header_session_id(request)
    explicit = client_id_param(request)
    caller, stored = await caller_and_session(request, session_id)
    record = runtime_of(request).conversations.addressed(caller, stored)
    app = caller.app
    runtime = runtime_of(request)
    if not runtime.apps.get(app).provider_keys:
        raise Forbidden(
            f"app {app!r} does not let clients bring their own provider keys "
            "(provider_keys = false in its config)"
        )
    keys = vault.require(runtime.vault).provider_keys
    client_id = explicit or (record.client_id if record is not None else None)
    if client_id is None:
        raise BadRequest(
            "this session has no client yet: send client_id (as a query parameter here, "
            "or with the session's chat and state requests)"
        )
    return Scope(app, client_id, keys)


async def list_keys(request: Request) -> Response:
    scope = await scope_of(request)
    keys = await scope.keys.list_keys(scope.app, scope.client_id)
    return JSONResponse({"provider_keys": [key.as_json() for key in keys]})


async def save(request: Request) -> Response:
    scope = await scope_of(request)
    body = await json_body(request)
    if body is None:
        raise BadRequest(
            'the body must be JSON: {"provider": "...", "api_key": "...", "label": ""}'
        )
    key = await scope.keys.save(
        scope.app, scope.client_id, body.get("provider"), body.get("api_key"), body.get("label")
    )
    return JSONResponse({"key": key.as_json()})


async def delete(request: Request) -> Response:
    scope = await scope_of(request)
    deleted = await scope.keys.delete(scope.app, scope.client_id, request.path_params["provider"])
    return JSONResponse({"deleted": deleted})


routes = [
    by_method("/control/provider-keys", GET=list_keys, POST=save),
    Route("/control/provider-keys/{provider}", delete, methods=["DELETE"]),
]
