"""The ASGI GraphQL endpoint: Strawberry's view with Confab's context and auth.

HTTP requests authenticate from their headers. WebSocket connections may do so from
the upgrade request's headers or from the `connection_init` payload
(`{"appKey": "...", "app": "..."}`), which wins; a bad key is refused there
(graphql-transport-ws closes with 4403, graphql-ws answers `connection_error`).
A connection whose key is later revoked is closed with 4403 (schema/live.py).

Unknown keys are limited per client address (runtime/auth_throttle.py): over HTTP
the refusal is a `RATE_LIMITED` error answered with status 429 and `Retry-After`.

HTTP requests are GraphQL over HTTP by the spec, with batching and multipart
subscriptions (schema/http_view.py); WebSockets keep Strawberry's protocol handlers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import (
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types.unset import UnsetType

from runtime.credentials import app_from_request, client_host, key_from_headers
from runtime.errors import ConfabError, RateLimited
from runtime.telemetry.context import app_name
from schema.context import Context
from schema.graphiql_page import graphiql_page
from schema.http_view import GraphQLOverHTTP, SubResponse
from schema.live import LegacyWSHandler, LiveTransportWSHandler
from schema.response_limit import ResponseSizeLimit
from settings import Settings

if TYPE_CHECKING:
    import strawberry

    from runtime.core import Runtime


class ConfabGraphQL(GraphQLOverHTTP, ResponseSizeLimit, GraphQL[Context, None]):
    graphql_transport_ws_handler_class = LiveTransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: strawberry.Schema, settings: Settings) -> None:
        super().__init__(
            schema,
            # Multipart is an HTTP transport: Strawberry offers only the other two
            # in the WebSocket handshake.
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
            ),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            allowed_origins=settings.allowed_origins,
        )
        self.batch_limit = max(settings.graphql_batch_limit, 0)

    async def render_graphql_ide(self, request: Request) -> Response:
        """Confab's own GraphiQL page: every asset from /graphql/assets (no CDN)."""
        return graphiql_page(request)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | SubResponse
    ) -> Context:
        runtime: Runtime = request.app.state.runtime
        # A WebSocket's operations are counted one by one (ConfabSchema); an HTTP
        # request once, here, so a refusal gets its status and `Retry-After`.
        per_operation = isinstance(request, WebSocket)
        context = Context(
            runtime=runtime, client=client_host(request.scope), per_operation_limits=per_operation
        )
        try:
            caller = await runtime.apps.authenticate(
                key_from_headers(request.headers),
                app_from_request(request.headers, request.query_params),
                context.client,
            )
            app_name.set(caller.app)  # for the request's log lines
            if not per_operation:
                await runtime.limits.request(caller)
            context.authenticated_as(caller)
        except ConfabError as exc:
            context.failed_auth(exc)
            if isinstance(exc, RateLimited) and not isinstance(response, WebSocket):
                # The HTTP answer takes the status and headers of this sub-response.
                response.status_code = 429
                response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        key, app = params.get("appKey"), params.get("app")
        if isinstance(key, str) or isinstance(app, str):
            try:
                context.authenticated_as(
                    await context.runtime.apps.authenticate(
                        key if isinstance(key, str) else None,
                        app if isinstance(app, str) else None,
                        context.client,
                    )
                )
            except ConfabError as exc:
                context.failed_auth(exc)
        try:
            caller = context.caller
        except ConfabError as exc:
            payload: dict[str, object] = {"code": exc.code, "message": exc.message}
            if isinstance(exc, RateLimited):
                payload["retryAfter"] = exc.retry_after_seconds
            raise ConnectionRejectionError(payload) from exc
        return {"app": caller.app}
