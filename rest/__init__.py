"""The REST compatibility layer: the documented `/api` endpoints of a hosted agent
backend, served by the same runtime services as GraphQL."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router

from rest import (
    chat,
    control,
    openapi,
    provider_keys,
    search,
    secrets,
    sessions,
    simulate,
    updates,
)
from rest.errors import handle_error, handle_http_error, not_found
from settings import Settings


async def health(request: Request) -> Response:
    return PlainTextResponse("OK")


def rest_routes(settings: Settings) -> list[Route | Mount]:
    # A Router, not a Starlette sub-app: handlers reach the runtime through the
    # root application (`request.app`), which a sub-app would replace.
    router = Router(
        routes=[
            *sessions.routes,
            *search.routes,
            *chat.routes,
            *updates.routes,
            *control.routes,
            *secrets.routes,
            *provider_keys.routes,
            *simulate.routes,
            *openapi.routes,
        ],
        default=not_found,
    )
    # CORS is the whole app's (edge/cors.py), one policy for every route.
    api = ExceptionMiddleware(
        router, handlers={HTTPException: handle_http_error, Exception: handle_error}
    )
    return [Route("/health", health, methods=["GET"]), Mount("/api", app=api)]
