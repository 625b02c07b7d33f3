"""Failed key checks per client address, so guessing keys costs the guesser, not us.

Each address gets a one-minute window that opens with its first failure; once the
window holds `per_minute` failures, further unknown keys from that address are
refused (`RateLimited`, with the seconds until the window closes) before they reach
the database. Refusals do not count as failures: they cost nothing, and counting
them would only push `Retry-After` further out for a client that honours it.

A fixed window keeps each address at two numbers (a log of failure times would be
`per_minute` floats each); its known slack, up to twice the limit across a window
boundary, is harmless for this purpose. At most `capacity` addresses are tracked;
the least recently failing one is forgotten first.

Only unknown keys are counted or refused (runtime/keys.py asks here after its cache
of verified keys), so a valid key keeps working from an address that also guesses.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict

from runtime.errors import RateLimited

WINDOW = 60.0


class AuthThrottle:
    def __init__(self, per_minute: int, capacity: int = 10_000) -> None:
        """`per_minute` <= 0 turns the throttle off."""
        self.per_minute = per_minute
        self.capacity = capacity
        # address -> [window start (monotonic seconds), failures in the window]
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def check(self, client: str, now: float) -> None:
        """Raise `RateLimited` if `client` has used up its failures for this window."""
        window = self._windows.get(_bucket(client))
        if window is None or self.per_minute <= 0:
            return
        start, failures = window
        closes = start + WINDOW
        if failures >= self.per_minute and now < closes:
            raise RateLimited(
                f"too many invalid app keys from this address; retry in "
                f"{math.ceil(closes - now)} s",
                retry_after=closes - now,
            )

    def failed(self, client: str, now: float) -> None:
        if self.per_minute <= 0:
            return
        bucket = _bucket(client)
        window = self._windows.get(bucket)
        if window is None or now >= window[0] + WINDOW:
            self._windows[bucket] = [now, 1.0]
        else:
            window[1] += 1
        self._windows.move_to_end(bucket)
        while len(self._windows) > self.capacity:
            self._windows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._windows)


def _bucket(client: str) -> str:
    """The address itself, or for IPv6 its /64: one host is usually given a whole
    /64, so counting single IPv6 addresses would let it rotate past the limit."""
    if ":" not in client:
        return client
    try:
        address = ipaddress.IPv6Address(client)
    except ValueError:
        return client
    if address.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))
