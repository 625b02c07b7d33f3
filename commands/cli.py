"""The command line: `python server.py <command>` (server.py lists them).

Each command imports what it needs when it runs, so `migrate` or `keys create`
does not pay for building the GraphQL schema and the whole web app.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from commands import admin_parser
from runtime.database_url import redacted
from runtime.telemetry.logs import configure_logging
from settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "graphql" / "schema.graphql"
OPERATIONS_PATH = ROOT / "graphql" / "operations"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    command = args.command or "serve"
    for variable in settings.unknown_variables:
        if command == "check-config":
            print(f"warning: {variable} is set but is no setting: ignored", file=sys.stderr)
        else:
            logging.getLogger("confab").warning("%s is set but is no setting: ignored", variable)
    if command != "serve":
        logging.getLogger("tortoise").setLevel(logging.WARNING)
    if command in ("serve", "check-config"):
        from runtime.config_check import check_apps

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
        from commands.serve import serve

        return serve(
            settings.with_overrides(
                host=args.host or settings.host, port=args.port or settings.port
            )
        )
    if command == "export-schema":
        return export_schema(settings, Path(args.path) if args.path else SCHEMA_PATH)
    from runtime.database import apply_migrations
    from runtime.errors import ConfabError

    try:
        if command == "migrate":
            asyncio.run(apply_migrations(settings))
            print(f"migrated {redacted(settings.database_url)}")
            return 0
        if command == "documents":
            return asyncio.run(_documents_command(settings, args))
        if command in ("sessions", "search", "stats"):
            from commands import admin

            return asyncio.run(admin.run(settings, args))
        return asyncio.run(_keys_command(settings, args))
    except ConfabError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


def export_schema(settings: Settings, path: Path) -> int:
    from resolvers import confab_schema

    path.write_text(confab_schema(settings).as_str() + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


async def _keys_command(settings: Settings, args: argparse.Namespace) -> int:
    from tortoise import Tortoise

    from runtime import keys
    from runtime.apps import AppRegistry
    from runtime.database import apply_migrations, tortoise_config

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


async def _documents_command(settings: Settings, args: argparse.Namespace) -> int:
    """Trusted documents (schema/trusted_loader.py), stored for every replica."""
    from tortoise import Tortoise

    from resolvers import confab_schema
    from runtime.database import apply_migrations, tortoise_config
    from runtime.trusted_documents import add_documents, documents_after
    from schema.build import ConfabSchema
    from schema.trusted_loader import DocumentsError, load_paths

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
    admin_parser.register(commands)
    return parser
