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


def uuid_arg(field: str, value: str) -> UUID:
    try:
        return UUID(value.strip())
    except (ValueError, AttributeError):
        raise InvalidInput(field, f"must be a UUID, got {value!r:.60}") from None


def title_arg(field: str, value: str) -> str:
    title = value.strip()
    if not title:
        raise InvalidInput(field, "must not be empty")
    if len(title) > TITLE_MAX:
        raise InvalidInput(field, f"must be at most {TITLE_MAX} characters, got {len(title)}")
    return title


def public_key_arg(field: str, value: str) -> str:
    """An EVM address; stored lower-case so comparisons ignore the checksum casing."""
    key = value.strip()
    if not _EVM_ADDRESS.fullmatch(key):
        raise InvalidInput(field, "must be an EVM address: 0x followed by 40 hex digits")
    return key.lower()


def json_object_arg(field: str, value: object) -> JSONObject:
    if not isinstance(value, dict):
        raise InvalidInput(field, "must be a JSON object")
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > JSON_OBJECT_MAX_BYTES:
        raise InvalidInput(field, f"must be at most {JSON_OBJECT_MAX_BYTES} bytes, got {size}")
    return value


def page_size_arg(field: str, value: int) -> int:
    if not 1 <= value <= PAGE_MAX:
        raise InvalidInput(field, f"must be between 1 and {PAGE_MAX}, got {value}")
    return value
