"""`/api/control/*`: models and apps a caller may use; choosing a session's model."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rest.errors import BadRequest
from rest.request import caller_for_session, caller_of, header_session_id, runtime_of


async def models(request: Request) -> Response:
    runtime = runtime_of(request)
    caller = await caller_of(request)
    return JSONResponse(list(runtime.apps.get(caller.app).model.models))


async def select_model(request: Request) -> Response:
    rig = request.query_params.get("rig", "").strip()
    if not rig:
        raise BadRequest("the rig query parameter (a model name) is required")
    session_id = header_session_id(request)
    runtime = runtime_of(request)
    caller = await caller_for_session(request, session_id)
    offered = runtime.apps.get(caller.app).model.models
    if rig not in offered:
        raise BadRequest(f"unknown model {rig!r}; this app offers {list(offered)}")
    _, created = await runtime.conversations.ensure_session(caller, session_id)
    await runtime.turns.select_model(caller, session_id, rig)
    return JSONResponse({"success": True, "rig": rig, "created": created})


async def apps(request: Request) -> Response:
    runtime = runtime_of(request)
    caller = await caller_of(request)
    usable = [name for name in runtime.apps.names() if caller.may_use(name)]
    return JSONResponse(sorted(usable, key=lambda name: (name != "default", name)))


routes = [
    Route("/control/models", models, methods=["GET"]),
    Route("/control/model", select_model, methods=["POST"]),
    Route("/control/apps", apps, methods=["GET"]),
]
