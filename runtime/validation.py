"""Input checks shared by every transport. Each failure names the field it rejects."""

from __future__ import annotations

import json
import re
from uuid import UUID

from runtime.errors import InvalidInput
from runtime.records import JSONObject

TITLE_MAX = 200
JSON_OBJECT_MAX_BYTES = 64 * 1024
PAGE_MAX = 200

_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
# Ids legacy clients choose (session ids, client ids): printable ASCII, no spaces.
OPAQUE_ID_MAX = 128
_OPAQUE_ID = re.compile(rf"[\x21-\x7e]{{1,{OPAQUE_ID_MAX}}}")


def uuid_arg(field: str, value: str) -> UUID:
    try:
        return UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidInput(field, f"must be a UUID, got {value!r:.60}") from None


def opaque_id_arg(field: str, value: str) -> str:
    """An id a legacy client chose: 1 to 128 printable ASCII characters, no spaces."""
    if not _OPAQUE_ID.fullmatch(value):
        raise InvalidInput(
            field,
            f"must be 1 to {OPAQUE_ID_MAX} printable ASCII characters without spaces, "
            f"got {value[:60]!r}" + ("..." if len(value) > 60 else ""),
        )
    return value


def text_arg(field: str, value: str) -> str:
    """Text a database can store: no NUL characters, no unpaired surrogates."""
    if "\x00" in value:
        raise InvalidInput(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid Unicode text (unpaired surrogate)") from None
    return value


def title_arg(field: str, value: str) -> str:
    title = text_arg(field, value).strip()
    if not title:
        raise InvalidInput(field, "must not be empty")
    if len(title) > TITLE_MAX:
        raise InvalidInput(field, f"must be at most {TITLE_MAX} characters, got {len(title)}")
    return title


def int_id_arg(field: str, value: str) -> int:
    """A numeric id (a stored row's), as GraphQL's ID sends it: text."""
    if not value.isdigit() or len(value) > 19:
        raise InvalidInput(field, "must be an id this API issued (digits)")
    return int(value)


def public_key_arg(field: str, value: str) -> str:
    """An EVM address; stored lower-case so comparisons ignore the checksum casing."""
    key = value.strip()
    if not _EVM_ADDRESS.fullmatch(key):
        raise InvalidInput(field, "must be an EVM address: 0x followed by 40 hex digits")
    return key.lower()


def json_object_arg(field: str, value: object) -> JSONObject:
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object")
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if "\\u0000" in text:
        raise InvalidInput(field, "must not contain NUL characters")
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise InvalidInput(field, "is not valid Unicode text (unpaired surrogate)") from None
    if size > JSON_OBJECT_MAX_BYTES:
        raise InvalidInput(field, f"must be at most {JSON_OBJECT_MAX_BYTES} bytes, got {size}")
    return value


def page_size_arg(field: str, value: int) -> int:
    if not 1 <= value <= PAGE_MAX:
        raise InvalidInput(field, f"must be between 1 and {PAGE_MAX}, got {value}")
    return value
