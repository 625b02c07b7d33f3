"""The one naming rule for a session's Redis keys and live channel.

On a Redis Cluster every key and the channel of a session share the hash tag
`{<session id>}`, so the publish script's keys and the channel it publishes to
hash to one slot (a script may only touch its own slot):
`confab:{<sid>}:seq` (the id counter), `confab:{<sid>}:log` (the replay stream),
`confab:{<sid>}:pub` (publishers' last stored serials, runtime/events/publish_script.py),
`confab:{<sid>}:ev` (the shard channel).

A single Redis keeps the names it has always had (`confab:seq:<sid>`, ...). There
slots do not matter, and renaming would split a session in two during a rolling
upgrade: old and new replicas would count ids on two different counters, and
subscribers drop the lower ids as duplicates. Moving to a cluster is a new data
store anyway: cursors from the old one get `resync_required`, nothing worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class SessionKeys:
    counter: str
    stream: str
    marks: str
    channel: str

    @property
    def stored(self) -> tuple[str, str, str]:
        """Every key that holds the session's events (what forgetting deletes)."""
        return (self.counter, self.stream, self.marks)


def session_keys(session_id: UUID, *, cluster: bool) -> SessionKeys:
    if cluster:
        tag = f"confab:{{{session_id}}}"
        return SessionKeys(f"{tag}:seq", f"{tag}:log", f"{tag}:pub", f"{tag}:ev")
    return SessionKeys(
        f"confab:seq:{session_id}",
        f"confab:log:{session_id}",
        f"confab:pub:{session_id}",
        f"confab:ev:{session_id}",
    )
