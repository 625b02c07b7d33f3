"""When a replica is provably the only one writing, its cache needs no Redis check.

With one replica on a Redis deployment (the common small production), every
cache check asks Redis about writes that can only have been its own. So each
replica says it is present (a sorted set of replicas, each until `PRESENCE_MS`
after its last call, by Redis's clock) on a tick every `TICK_SECONDS` and on
every version write; a replica alone in that set takes the sole lease, a key of
`LEASE_MS` renewed on each tick while it stays alone.

Why it is safe (read-your-writes across replicas stays exact):

- The holder believes it is alone only until `LEASE_MS` after it *sent* the
  tick that renewed the lease, minus a margin; Redis keeps the key until
  `LEASE_MS` after it *ran* that tick, which is later. The key is never deleted
  early, only left to expire.
- Every version write of another replica runs in the same script as its
  presence (runtime/coherence_redis.py): when it finds the lease held by
  someone else, it waits out the key's remaining time before its write is
  answered. By then the holder no longer believes it is alone (its next tick
  sees two present and does not renew), so it checks Redis, where the new
  version already is.
- A session is answered unchecked only if a check of it was *sent* within the
  current sole period (`Verified`): copies from before the period began, when
  others may have written, are checked once first.

Redis Cluster keeps the check on every read (the version keys and these two
live on different nodes, so one script cannot cover them). Clocks: the holder's
monotonic clock and Redis's wall clock must not drift apart by more than the
margin within one lease (seconds); a stepped Redis clock is the one way to
break it, as it would break any lease.
"""

from __future__ import annotations

import time
from uuid import UUID

SOLE_KEY = "{confab:coherence}:sole"
PRESENT_KEY = "{confab:coherence}:present"
LEASE_MS = 3_000
PRESENCE_MS = 10_000  # ten ticks: a replica that misses a few stays present
TICK_SECONDS = 1.0
MARGIN_SECONDS = 0.2
VERIFIED_LIMIT = 100_000  # sessions; past it the set starts over (a check each)

# Shared by both scripts. KEYS[1] the lease, KEYS[2] the presence set; ARGV[1]
# this replica's id. Leaves `sole` (the holder's id or false) and `alone`.
PRESENCE_LUA = f"""
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZADD', KEYS[2], now + {PRESENCE_MS}, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], {PRESENCE_MS})
local alone = redis.call('ZCARD', KEYS[2]) == 1
local sole = redis.call('GET', KEYS[1])
local others_lease = 0
if sole and sole ~= ARGV[1] then others_lease = math.max(redis.call('PTTL', KEYS[1]), 0) end
"""

# Returns {1 if this replica now holds the lease else 0, ms another's lease has left}.
TICK_LUA = (
    PRESENCE_LUA
    + f"""
if alone and (not sole or sole == ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', {LEASE_MS})
    return {{1, 0}}
end
return {{0, others_lease}}
"""
)


class SoleLease:
    """This replica's belief that it is alone, and the sessions checked since."""

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id
        self._until = 0.0  # monotonic; alone before it
        self._period = 0  # counts the sole periods, so a check knows which it was in
        self._verified: set[UUID] = set()

    def alone(self) -> bool:
        return time.monotonic() < self._until

    def ticked(self, sent_at: float, holds: bool) -> None:
        """The answer to a tick sent at `sent_at` (monotonic)."""
        if not holds:
            self._until = 0.0
            return
        if not self.alone():
            self._period += 1
            self._verified = set()
        self._until = max(self._until, sent_at + LEASE_MS / 1000 - MARGIN_SECONDS)

    def lapse(self) -> None:
        """A tick failed: stop trusting the lease at once, not when it runs out."""
        self._until = 0.0

    def period(self) -> int | None:
        """The current sole period, or None when not alone."""
        return self._period if self.alone() else None

    def known(self, session_id: UUID) -> bool:
        return self.alone() and session_id in self._verified

    def checked(self, session_id: UUID, period: int | None) -> None:
        """A check sent during sole period `period` found the copy current."""
        if period is None or self.period() != period:
            return
        if len(self._verified) >= VERIFIED_LIMIT:
            self._verified = set()
        self._verified.add(session_id)

    def forget(self, session_id: UUID) -> None:
        self._verified.discard(session_id)
