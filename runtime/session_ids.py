"""Session ids as legacy clients send them: a UUID, or any opaque text id.

The legacy backend accepted any text id (its widget falls back to
`default-session`), so the REST layer does too: 1 to 128 printable ASCII
characters without spaces. Confab keys every session by a UUID; a text id that is
not a UUID names the session whose UUID is derived from it (a version-5 UUID in a
namespace of Confab's own). The derivation is stable, so every replica and every
request finds the same session, and it never collides with a real UUID a client
generated: those are version 4 (or 7), and a version-5 UUID in this namespace is
only ever produced from its text id. The text id is stored with the session
(`legacy_id`), REST answers with it, and GraphQL exposes it as `legacyId`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID, uuid5

from runtime.validation import opaque_id_arg

# Confab's namespace for text session ids (fixed forever: it names stored sessions).
LEGACY_ID_NAMESPACE = UUID("3f0c1c9e-6a43-5b2e-9d0c-5f1b2a7c8e41")

# Only the canonical spelling is a UUID; anything else ("{...}", 32 hex digits) is
# a text id like any other, as it was for the legacy backend.
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class SessionName:
    """A session id as a client sent it, and the session it names."""

    id: UUID
    sent: str  # exactly as sent: the REST layer answers with it
    legacy_id: str | None  # the text id, when it is not a UUID

    @property
    def is_legacy(self) -> bool:
        return self.legacy_id is not None


def session_name(field: str, text: str) -> SessionName:
    """Parse a client's session id; `InvalidInput` (naming `field`) if it is none."""
    sent = opaque_id_arg(field, text)
    if _CANONICAL_UUID.fullmatch(sent):
        return SessionName(id=UUID(sent), sent=sent, legacy_id=None)
    return SessionName(id=derived_id(sent), sent=sent, legacy_id=sent)


def derived_id(legacy_id: str) -> UUID:
    """The UUID of the session a text id names."""
    return uuid5(LEGACY_ID_NAMESPACE, legacy_id)
