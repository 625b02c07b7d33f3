"""System notices a turn or the server posts to a session: stored, then announced."""

from __future__ import annotations

from runtime.announcer import Announcer
from runtime.events.envelope import SYSTEM_NOTICE
from runtime.records import SessionRecord
from runtime.sessions import SessionHost


async def post_notice(
    host: SessionHost, announcer: Announcer, session: SessionRecord, kind: str, message: str
) -> None:
    """Store a system event of `kind` and publish it as a `system_notice`."""
    event = await host.add_system_event(session.id, kind, {"message": message})
    await announcer.publish(
        session, SYSTEM_NOTICE, {"message": message, "event_id": event.id, "kind": kind}
    )
