"""The arguments of `server.py sessions ...`, `search reindex` and `stats` (run by
commands/admin.py, imported only when one of them runs)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sessions = commands.add_parser("sessions", help="find, show, export and delete sessions")
    verbs = sessions.add_subparsers(dest="sessions_command", required=True)
    listing = verbs.add_parser("list", help="sessions matching the filters, newest activity first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = verbs.add_parser("show", help="a session and its threads")
    show.add_argument("id")
    export = verbs.add_parser("export", help="a session as one JSON document, or Markdown")
    export.add_argument("id")
    export.add_argument("--out", help="write to this file (default: standard output)")
    export.add_argument(
        "--format", choices=("json", "markdown"), default="json", help="default: json"
    )
    imported = verbs.add_parser("import", help="an exported JSON document as a new session")
    imported.add_argument("file", help="the document (confab.session/1 or /2)")
    imported.add_argument("--app", required=True, help="the app the new session belongs to")
    delete = verbs.add_parser("delete", help="delete sessions by id, or all matching filters")
    delete.add_argument("ids", nargs="*", help="session ids")
    _filters(delete)
    delete.add_argument("--yes", action="store_true", help="really delete what the filters match")
    search = commands.add_parser("search", help="the full-text search index")
    search_verbs = search.add_subparsers(dest="search_command", required=True)
    search_verbs.add_parser(
        "reindex",
        help="index every row again: after an app's search_language changed, or a SQLite VACUUM",
    )
    stats = commands.add_parser("stats", help="sessions, messages, turns and live replicas")
    stats.add_argument("--json", action="store_true")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", action="append", default=[], help="only this app (repeatable)")
    parser.add_argument("--wallet", help="only sessions bound to this wallet (0x...)")
    parser.add_argument("--older-than", help="no activity for this long: 30d, 12h, 45m, 90s")
    state = parser.add_mutually_exclusive_group()
    state.add_argument("--archived", action="store_true", help="only archived sessions")
    state.add_argument("--active", action="store_true", help="only sessions not archived")
