"""The ASGI GraphQL endpoint: Strawberry's view with Confab's context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from runtime.credentials import app_from_request, key_from_headers
from runtime.errors import ConfabError
from schema.context import Context

if TYPE_CHECKING:
    from runtime.core import Runtime


class ConfabGraphQL(GraphQL[Context, None]):
    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        runtime: Runtime = request.app.state.runtime
        try:
            caller = await runtime.apps.authenticate(
                key_from_headers(request.headers),
                app_from_request(request.headers, request.query_params),
            )
        except ConfabError as exc:
            return Context(runtime=runtime, _auth_error=exc)
        return Context(runtime=runtime, _caller=caller)
