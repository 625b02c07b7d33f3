"""Opaque cursors: a kind letter and a text, base64url-encoded. Clients pass them
back unchanged; one this API did not issue (of another kind) is INVALID_INPUT."""

from __future__ import annotations

import base64

from runtime.errors import InvalidInput


def encode(kind: str, text: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{text}".encode()).decode().rstrip("=")


def decode(field: str, cursor: str, kind: str) -> str:
    """The text of a cursor of `kind`."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(field, "is not a cursor this API issued") from None
    prefix, _, rest = text.partition(":")
    if prefix != kind or not rest:
        raise InvalidInput(field, "is not a cursor this API issued")
    return rest
