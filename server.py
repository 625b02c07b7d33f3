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
python server.py search reindex                   rebuild the full-text search index
python server.py stats                            sessions, messages, turns, replicas

The app is built in asgi.py, the commands run from commands/cli.py; both are
imported only when used, so a command does not load the web app.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from settings import Settings


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app (`uvicorn --factory server:create_app`)."""
    from asgi import create_app as build

    return build(settings)


def main(argv: list[str] | None = None) -> int:
    from commands.cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
