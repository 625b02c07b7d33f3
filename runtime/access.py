"""Who may see which session: the one set of rules every transport goes through
(by way of `Conversations`, which applies them to what it loads).

A caller sees the sessions of its own app that have not expired; another app's
session is reported exactly like a missing one. A caller known by the session id
alone (no key, no app, no listed origin: the legacy bearer capability) acts in the
session's app, unless keys are strict.
"""

from __future__ import annotations

from datetime import datetime

from runtime.apps import Caller
from runtime.errors import NotFound, Unauthenticated
from runtime.events.envelope import utc_now
from runtime.records import SessionRecord
from settings import DEFAULT_APP


def expired(record: SessionRecord, now: datetime) -> bool:
    """Past its TTL; a pinned session never is."""
    return not record.is_pinned and record.expires_at is not None and record.expires_at <= now


def visible(caller: Caller, record: SessionRecord | None) -> SessionRecord | None:
    """`record` if the caller may see it: its own app's, and not expired."""
    if record is None or record.app != caller.app or expired(record, utc_now()):
        return None
    return record


def authorized(caller: Caller, session: SessionRecord) -> SessionRecord:
    """`session` if the caller may see it, else `NotFound`: for records a transport
    already holds (no lookup)."""
    if visible(caller, session) is None:
        raise NotFound(f"session {session.id} not found")
    return session


def addressed(
    caller: Caller, stored: SessionRecord | None, *, follow: bool = False
) -> SessionRecord | None:
    """The session a request names (as stored) for an operation that may come before
    it exists (legacy clients poll, stream and save keys first): the caller's own,
    or None while there is none (or it expired). Another app's is `NotFound`, unlike
    a missing one; with `follow`, a bearer caller may name it anyway: its stream
    follows the session into its app."""
    if stored is None or (follow and caller.bearer):
        return stored
    if stored.app != caller.app:
        raise NotFound(f"session {stored.id} not found")
    return visible(caller, stored)


def bearer_caller(stored: SessionRecord | None, client: str | None, *, strict: bool) -> Caller:
    """Who a caller without a key or an app acts as, given the session it names (as
    stored): that session's app (`default` for none yet). Strict keys refuse that
    for any other app's session."""
    if stored is None or stored.app == DEFAULT_APP:
        return Caller(app=DEFAULT_APP, bearer=not strict, client=client)
    if strict:
        raise Unauthenticated(f"this session belongs to app {stored.app!r}: send its app key")
    return Caller(app=stored.app, bearer=True, client=client)
