"""Opaque pagination cursors. Clients pass them back unchanged; a bad one is INVALID_INPUT."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from runtime.cursors import decode as _decode
from runtime.cursors import encode
from runtime.errors import InvalidInput
from runtime.records import SessionRecord


def session_cursor(record: SessionRecord) -> str:
    pinned = "p|" if record.is_pinned else ""
    return encode("s", f"{pinned}{record.last_active_at.isoformat()}|{record.id}")


def parse_session_cursor(field: str, cursor: str) -> tuple[bool, datetime, UUID]:
    """(pinned, last active, id); a cursor without the pin mark is of an unpinned one."""
    rest = _decode(field, cursor, "s")
    pinned = rest.startswith("p|")
    try:
        stamp, _, session_id = rest.removeprefix("p|").partition("|")
        return pinned, datetime.fromisoformat(stamp), UUID(session_id)
    except ValueError:
        raise InvalidInput(field, "is not a cursor this API issued") from None


def message_cursor(seq: int) -> str:
    return encode("m", str(seq))


def parse_message_cursor(field: str, cursor: str) -> int:
    rest = _decode(field, cursor, "m")
    if not rest.isdigit():
        raise InvalidInput(field, "is not a cursor this API issued")
    return int(rest)
