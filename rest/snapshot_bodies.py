"""Encoded `/api/state` answers, kept while their session stays at one version.

The legacy snapshot is a pure rendering of the session record and its recent
messages when it carries no new system event and no message being streamed: then
the same version always renders the same bytes. The legacy client polls it every
500 ms while a turn runs, and a tab may poll an idle session for hours, so each
version is rendered and encoded once. The snapshot itself is still read (and so
checked against the caller, its events consumed) on every request; only the
shaping and the encoding are skipped.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from starlette.responses import JSONResponse, Response

from rest.shapes import snapshot
from runtime.conversations import Conversations
from runtime.snapshots import Snapshot

KEPT_BODIES = 2_000


class SnapshotBodies:
    def __init__(self, capacity: int = KEPT_BODIES) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[UUID, tuple[int, bytes]] = OrderedDict()

    def response(self, shot: Snapshot, conversations: Conversations, window: int) -> Response:
        session = shot.session
        pure = not shot.new_events and shot.streaming is None
        if pure:
            kept = self._kept.get(session.id)
            if kept is not None and kept[0] == session.version:
                self._kept.move_to_end(session.id)
                return Response(kept[1], media_type="application/json")
        rendered = JSONResponse(snapshot(session, shot.messages, shot.new_events, shot.streaming))
        # Kept only when the messages were exactly the session's at this version.
        if pure and conversations.cached_exactly(session.id, session.version, window):
            self._kept[session.id] = (session.version, bytes(rendered.body))
            self._kept.move_to_end(session.id)
            if len(self._kept) > self._capacity:
                self._kept.popitem(last=False)
        return rendered
