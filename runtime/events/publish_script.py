"""The Lua that publishes one event on Redis: id, log, live, expiry, exactly once.

Both Redis buses retry a batch whose reply never came (a timeout, a connection
cut, a master killed mid-pipeline). Redis may have run some of those scripts
already, and their writes may have reached the replica that is now master. Sent
again blindly, such an event would be stored twice under two ids, and every
subscriber would see it twice. So each publish carries its publisher's token and a
serial that only grows within the process; the script remembers, per session,
the highest serial stored for each publisher, and a publish at or below it is
one already stored: it returns that stored envelope (found near the log's tail)
instead of writing again, and publishes nothing.

KEYS: counter, stream, marks (hash: publisher token -> highest serial stored).
ARGV: first id, envelope body (JSON without id, starting with "{"), stream max
length, channel, ttl in ms (0: none), publisher token, serial, floor (cluster
only: the highest id the publisher saw acknowledged; the next id is above it, so
a promoted replica that missed the last writes does not give those ids again).
"""

from __future__ import annotations

import itertools
import uuid

# How far back from the log's tail a retried publish looks for its stored copy:
# a retry resends at most one batch, so its events are among the last ones.
RETRY_LOOKBACK = 1024

_ALREADY_STORED = f"""
local tag = ARGV[6] .. ':' .. ARGV[7]
local stored = tonumber(redis.call('HGET', KEYS[3], ARGV[6]) or '0')
if stored >= tonumber(ARGV[7]) then
  local tail = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', {RETRY_LOOKBACK})
  for _, entry in ipairs(tail) do
    if entry[2][4] == tag then return entry[2][2] end
  end
  return false
end
"""

_STORE = """
local envelope = '{"id":' .. id .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], id .. '-0', 'e', envelope, 'p', tag)
redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
"""

_EXPIRE = """
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return envelope
"""

SINGLE = f"""{_ALREADY_STORED}
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
local id = string.format('%d', redis.call('INCR', KEYS[1]))
{_STORE}
redis.call('PUBLISH', ARGV[4], envelope)
{_EXPIRE}"""

# Redis 7 allows SPUBLISH in a script when the channel is in the script's slot.
CLUSTER = f"""{_ALREADY_STORED}
local base = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local floor = tonumber(ARGV[8])
if floor > base then base = floor end
local id = string.format('%d', base + 1)
redis.call('SET', KEYS[1], id, 'KEEPTTL')
{_STORE}
redis.call('SPUBLISH', ARGV[4], envelope)
{_EXPIRE}"""


class PublishSerials:
    """This process's publisher token and its ever-growing publish serials."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex[:16]
        self._serials = itertools.count(1)

    def next(self) -> int:
        return next(self._serials)
