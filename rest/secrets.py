"""`/api/secrets`: a legacy client's secrets, which its tools receive by handle.

The client names itself by `client_id` (in the body to store, in the query to
delete); the app is the caller's (its key, a listed origin, or `default`). The
answer holds handles (`$SECRET:name`), never values. Without CONFAB_SECRET_KEY
every endpoint here answers 503.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import by_method, caller_of, client_id_param, json_body, runtime_of
from runtime import vault


def _client_id(request: Request) -> str:
    client_id = client_id_param(request)
    if client_id is None:
        raise BadRequest("the client_id query parameter is required")
    return client_id


async def ingest(request: Request) -> Response:
    caller = await caller_of(request)
    secrets = vault.require(runtime_of(request).vault).secrets
    body = await json_body(request)
    if body is None:
        raise BadRequest('the body must be JSON: {"client_id": "...", "secrets": {name: value}}')
    handles = await secrets.ingest(caller.app, body.get("client_id"), body.get("secrets"))
    return JSONResponse({"handles": handles})


async def clear(request: Request) -> Response:
    caller = await caller_of(request)
    secrets = vault.require(runtime_of(request).vault).secrets
    await secrets.clear(caller.app, _client_id(request))
    return JSONResponse({"cleared": True})


async def delete(request: Request) -> Response:
    caller = await caller_of(request)
    secrets = vault.require(runtime_of(request).vault).secrets
    deleted = await secrets.delete(caller.app, _client_id(request), request.path_params["name"])
    return JSONResponse({"deleted": deleted})


routes = [
    by_method("/secrets", POST=ingest, DELETE=clear),
    Route("/secrets/{name}", delete, methods=["DELETE"]),
]
