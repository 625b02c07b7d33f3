"""The ASGI application: routes, middleware and the lifespan that opens the runtime.

`server.py` builds it for `python server.py`; an ASGI server can too:
`uvicorn --factory server:create_app`. The command line lives in commands/.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from tortoise.contrib.starlette import RegisterTortoise

from edge.cors import Cors
from edge.metrics_endpoint import metrics_route, metrics_server
from edge.observe import Observe
from edge.request_limits import RequestLimits
from resolvers import confab_schema
from rest import rest_routes
from rest.errors import handle_http_error
from runtime.core import Runtime
from runtime.database import apply_migrations, forget_compiled_queries, redacted, tortoise_config
from runtime.telemetry.metrics import Metrics
from schema.graphiql_page import graphiql_asset
from schema.sse import GraphQLOverSSE
from schema.view import ConfabGraphQL
from settings import Settings

logger = logging.getLogger("confab")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    # Per application (tests run several in one process); None when off.
    metrics = None if settings.metrics == "off" else Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if settings.migrate_on_startup and ":memory:" not in settings.database_url:
                await apply_migrations(settings)
            forget_compiled_queries()
            await stack.enter_async_context(
                RegisterTortoise(
                    app,
                    config=tortoise_config(settings),
                    # An in-memory database lives only as long as its connection.
                    generate_schemas=":memory:" in settings.database_url,
                )
            )
            app.state.runtime = await stack.enter_async_context(Runtime(settings, metrics=metrics))
            if metrics is not None:
                metrics.watch(app.state.runtime)
                stack.callback(metrics.forget)
                if settings.metrics_port is not None:
                    await stack.enter_async_context(
                        metrics_server(metrics, settings.host, settings.metrics_port)
                    )
            # Long-lived responses (SSE) end when this is set: on SIGTERM (see
            # `ConfabServer`) or, at the latest, when the lifespan ends.
            app.state.shutting_down = asyncio.Event()
            app.state.loop = asyncio.get_running_loop()
            stack.callback(app.state.shutting_down.set)
            # The persisted-query store's Redis client, opened on first use.
            stack.push_async_callback(graphql_app.schema.aclose)  # type: ignore[attr-defined]
            logger.info("database: %s", redacted(settings.database_url))
            yield

    graphql_app = ConfabGraphQL(confab_schema(settings), settings)
    graphql_app.schema.metrics = metrics  # type: ignore[attr-defined]
    routes = [
        # graphql-sse requests (both modes) go to GraphQLOverSSE, the rest to the view.
        Route(
            "/graphql",
            GraphQLOverSSE(graphql_app, settings),
            methods=["GET", "POST", "PUT", "DELETE"],
        ),
        WebSocketRoute("/graphql", graphql_app),
        Route("/graphql/assets/{name}", graphiql_asset, methods=["GET"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        *rest_routes(settings),
        *(_bench_routes() if settings.bench_baselines else []),
        *([metrics_route(metrics)] if metrics and settings.metrics_port is None else []),
    ]
    # Unknown paths and wrong methods answer in the REST layer's JSON error shape,
    # including paths the /api mount cannot match (e.g. with a newline in them).
    handlers = {404: handle_http_error, 405: handle_http_error}
    # One CORS policy for every route (outermost: the edge's refusals carry it too),
    # then body size and JSON depth, checked before any route reads a byte.
    # Request ids, the access log, HTTP metrics and spans (edge/observe.py) outside all.
    middleware = [
        Middleware(Observe, metrics=metrics),
        Middleware(Cors, origins=settings.cors_origins),
        Middleware(RequestLimits, settings=settings),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers=handlers, middleware=middleware
    )


async def healthz(request: Request) -> Response:
    """The process is alive (no dependency is checked)."""
    return PlainTextResponse("OK")


async def readyz(request: Request) -> Response:
    """Ready to serve: every backing service answers."""
    runtime: Runtime = request.app.state.runtime
    checks = await runtime.ready()
    ok = all(value == "ok" for value in checks.values())
    body = {"ready": ok, **checks, "events": runtime.event_status()}
    return JSONResponse(body, status_code=200 if ok else 503)


def _bench_routes() -> list[BaseRoute]:
    """The raw baselines the benchmark compares with (bench/baselines.py), only
    where `CONFAB_BENCH_BASELINES` asks: imported then, never shipped otherwise."""
    from bench.baselines import routes

    return list(routes)
