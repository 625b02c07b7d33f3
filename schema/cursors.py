"""Opaque pagination cursors. Clients pass them back unchanged; a bad one is INVALID_INPUT."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

from runtime.errors import InvalidInput
from runtime.records import SessionRecord


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(field: str, cursor: str, kind: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(field, "is not a cursor this API issued") from None
    prefix, _, rest = text.partition(":")
    if prefix != kind or not rest:
        raise InvalidInput(field, "is not a cursor this API issued")
    return rest


def session_cursor(record: SessionRecord) -> str:
    pinned = "p|" if record.is_pinned else ""
    return _encode(f"s:{pinned}{record.last_active_at.isoformat()}|{record.id}")


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
    return _encode(f"m:{seq}")


def parse_message_cursor(field: str, cursor: str) -> int:
    rest = _decode(field, cursor, "m")
    if not rest.isdigit():
        raise InvalidInput(field, "is not a cursor this API issued")
    return int(rest)
