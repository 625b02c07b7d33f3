"""Confab's entry point: `create_app()` for ASGI servers, and the command line.

python server.py [serve] [--host H] [--port P]   run the server
python server.py migrate                          apply database migrations
python server.py check-config                     check settings and apps file; exit 2 if bad
python server.py keys create --app NAME [--label L]
python server.py keys list
python server.py keys revoke PREFIX
python server.py export-schema [PATH]             write the GraphQL SDL
python server.py documents load [PATH...]         trust GraphQL documents (.graphql, .json)
python server.py documents list
python server.py sessions list|show|export|delete [filters]   (commands/admin.py)
python server.py stats                            sessions, messages, turns, replicas
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import math
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from tortoise import Tortoise
from tortoise.contrib.starlette import RegisterTortoise

from commands import admin as admin_commands
from edge import ClientLimits, RequestLimits, effective_connection_cap, http_protocol
from edge.cors import Cors
from edge.listen import ListenError, bind_listener
from edge.metrics_endpoint import metrics_route, metrics_server
from edge.observe import Observe
from resolvers import confab_schema
from rest import baselines, rest_routes
from rest.errors import handle_http_error
from runtime import keys
from runtime.apps import AppRegistry
from runtime.config_check import check_apps
from runtime.core import Runtime
from runtime.database import (
    apply_migrations,
    forget_compiled_queries,
    redacted,
    tortoise_config,
)
from runtime.errors import ConfabError
from runtime.preflight import StartupRefused, preflight
from runtime.telemetry import tracing
from runtime.telemetry.logs import configure_logging
from runtime.telemetry.metrics import Metrics
from runtime.trusted_documents import add_documents, documents_after
from schema.build import ConfabSchema
from schema.graphiql_page import graphiql_asset
from schema.sse import GraphQLOverSSE
from schema.trusted_loader import DocumentsError, load_paths
from schema.view import ConfabGraphQL
from settings import Settings, SettingsError

logger = logging.getLogger("confab")

SCHEMA_PATH = Path(__file__).parent / "graphql" / "schema.graphql"


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
        *(baselines.routes if settings.bench_baselines else []),
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


# -- command line ---------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    command = args.command or "serve"
    if command != "serve":
        logging.getLogger("tortoise").setLevel(logging.WARNING)
    if command in ("serve", "check-config"):
        try:
            # What only building the apps can check.
            check_apps(settings.apps, f"CONFAB_CONFIG {settings.config_file}")
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if command == "check-config":
        print(
            f"config ok: apps {', '.join(sorted(settings.apps))}; "
            f"database {redacted(settings.database_url)}; "
            f"event bus {redacted(settings.event_bus_url)}"
        )
        return 0
    if command == "serve":
        return serve(
            settings.with_overrides(
                host=args.host or settings.host, port=args.port or settings.port
            )
        )
    if command == "export-schema":
        return export_schema(settings, Path(args.path) if args.path else SCHEMA_PATH)
    try:
        if command == "migrate":
            asyncio.run(apply_migrations(settings))
            print(f"migrated {redacted(settings.database_url)}")
            return 0
        if command == "documents":
            return asyncio.run(_documents_command(settings, args))
        if command in ("sessions", "stats"):
            return asyncio.run(admin_commands.run(settings, args))
        return asyncio.run(_keys_command(settings, args))
    except ConfabError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


def serve(settings: Settings) -> int:
    try:
        listener = bind_listener(settings.host, settings.port)
    except ListenError as exc:
        logger.error("%s", exc)
        return 2
    try:
        # The database, before anything serves: migrated if start-up should, else
        # checked; a problem is one line (runtime/preflight.py).
        asyncio.run(preflight(settings))
    except StartupRefused as exc:
        listener.close()
        logger.error("%s", exc)
        return 2
    settings = settings.with_overrides(auto_migrate=False)  # done, by the preflight
    tracing.setup_from_env()
    limits = ClientLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=effective_connection_cap(settings.max_connections),
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Logging is configured once, in main (runtime/telemetry/logs.py); the
        # access log is Confab's own (edge/observe.py), with the request id.
        log_config=None,
        access_log=False,
        lifespan="on",
        # SIGTERM: stop accepting, let requests in flight finish, then run shutdown.
        timeout_graceful_shutdown=10,
        # Header and body deadlines, head size limit, connection cap (edge.protocol).
        http=http_protocol(limits),
        # An idle kept-alive connection has as long as a new one has for its headers.
        timeout_keep_alive=math.ceil(settings.header_timeout),
        # A larger WebSocket message closes the socket with 1009.
        ws_max_size=settings.ws_max_message_bytes,
    )
    ConfabServer(config, settings).run(sockets=[listener])
    return 0


class ConfabServer(uvicorn.Server):
    """Uvicorn, telling the app a shutdown has begun before it waits for open
    connections: event streams end at once instead of holding the shutdown."""

    def __init__(self, config: uvicorn.Config, settings: Settings) -> None:
        super().__init__(config)
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # the socket accepts: now it is true
            where = sockets[0].getsockname() if sockets else (self.config.host, self.config.port)
            host, port = where[0], where[1]
            logger.info(
                "Confab listening on http://%s:%d (database: %s, event bus: %s)",
                host,
                port,
                redacted(self.settings.database_url),
                redacted(self.settings.event_bus_url),
            )
        # Everything built so far (schema, types, modules) lives as long as the
        # process: out of the collector's sight, full collections stop walking it
        # and stop pausing requests for milliseconds.
        gc.freeze()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        app = self.config.app
        if isinstance(app, Starlette) and hasattr(app.state, "loop"):
            app.state.loop.call_soon_threadsafe(app.state.shutting_down.set)


def export_schema(settings: Settings, path: Path) -> int:
    path.write_text(confab_schema(settings).as_str() + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


async def _keys_command(settings: Settings, args: argparse.Namespace) -> int:
    if settings.migrate_on_startup:
        await apply_migrations(settings)
    await Tortoise.init(config=tortoise_config(settings))
    try:
        await AppRegistry(settings.apps).sync_to_database()
        if args.keys_command == "create":
            clear, info = await keys.create_key(args.app, args.label or "")
            print(clear)
            print(
                f"created key {info.prefix} for {', '.join(info.apps)}; "
                "it is shown only now, store it safely",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            print(
                f"{'PREFIX':<14} {'APPS':<24} {'LABEL':<20} {'CREATED':<20} "
                f"{'LAST USED':<20} REVOKED"
            )
            for info in await keys.list_keys():
                print(
                    f"{info.prefix:<14} {','.join(info.apps):<24} {info.label:<20} "
                    f"{_when(info.created_at):<20} {_when(info.last_used_at):<20} "
                    f"{_when(info.revoked_at)}"
                )
        else:
            info = await keys.revoke_key(args.prefix)
            print(f"revoked {info.prefix}")
    finally:
        await Tortoise.close_connections()
    return 0


OPERATIONS_PATH = Path(__file__).parent / "graphql" / "operations"


async def _documents_command(settings: Settings, args: argparse.Namespace) -> int:
    """Trusted documents (schema/trusted_loader.py), stored for every replica."""
    entries = []
    if args.documents_command == "load":
        paths = [Path(path) for path in args.paths] or [OPERATIONS_PATH]
        schema = confab_schema(settings)
        assert isinstance(schema, ConfabSchema)
        try:
            entries = load_paths(paths, schema)
        except DocumentsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if settings.migrate_on_startup:
        await apply_migrations(settings)
    await Tortoise.init(config=tortoise_config(settings))
    try:
        if args.documents_command == "load":
            added, known = await add_documents(entries)
            print(f"trusted {added} new documents ({known} already trusted)")
        else:
            print(f"{'HASH':<14} {'OPERATION':<28} {'ADDED':<20} SOURCE")
            for row in await documents_after(0):
                name = row.operation_name or "-"
                print(f"{row.hash[:12]:<14} {name:<28} {_when(row.created_at):<20} {row.source}")
    finally:
        await Tortoise.close_connections()
    return 0


def _when(value: object) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[attr-defined]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="server.py", description="Confab server and tools")
    parser.add_argument("--host", help="listen address (env CONFAB_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (env CONFAB_PORT, default 8000)")
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="run the server (the default)")
    serve_parser.add_argument("--host", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    serve_parser.add_argument("--port", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("check-config", help="check the settings and apps file, then exit")
    export = commands.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("path", nargs="?", help=f"default {SCHEMA_PATH}")
    keys_parser = commands.add_parser("keys", help="manage app keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key; prints it once")
    create.add_argument("--app", action="append", required=True, help="app it covers (repeatable)")
    create.add_argument("--label", help="a note to recognise the key by")
    keys_commands.add_parser("list", help="list keys (prefix, apps, label, times)")
    revoke = keys_commands.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix")
    documents = commands.add_parser("documents", help="trusted GraphQL documents")
    documents_commands = documents.add_subparsers(dest="documents_command", required=True)
    load = documents_commands.add_parser("load", help="trust each operation of these files")
    load.add_argument(
        "paths",
        nargs="*",
        help=f".graphql files, directories or JSON manifests (default {OPERATIONS_PATH})",
    )
    documents_commands.add_parser("list", help="list the trusted documents")
    admin_commands.register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
