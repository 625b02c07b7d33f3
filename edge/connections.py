"""How many connections the process can hold open: the configured cap, never
more than its file descriptors allow.

Each connection holds a descriptor. When they run out, `accept()` fails, and
then nothing is served at all, `/healthz` included; below the cap, connections
over it are answered 503 and closed at once (see `edge.protocol`), so the
descriptors never run out.
"""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger(__name__)

# Descriptors kept for everything that is not a client connection: the listening
# socket, the database pool, Redis, log and database files, the event loop's own.
FD_RESERVE = 256


def raise_fd_limit() -> int:
    """Raise the soft descriptor limit to the hard one where allowed; the soft
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the file-descriptor limit to %d: %s", hard, exc)
    return soft


def connection_cap(max_connections: int, fd_limit: int) -> int:
    """`max_connections`, lowered to what `fd_limit` descriptors leave after the
    reserve (a small limit keeps half of itself in reserve)."""
    if fd_limit == resource.RLIM_INFINITY:
        return max_connections
    reserve = min(FD_RESERVE, fd_limit // 2)
    return max(1, min(max_connections, fd_limit - reserve))


def effective_connection_cap(max_connections: int) -> int:
    """Raise the descriptor limit, work out the cap, and say it once."""
    fd_limit = raise_fd_limit()
    cap = connection_cap(max_connections, fd_limit)
    logger.info(
        "connections: at most %d open (CONFAB_MAX_CONNECTIONS=%d, file-descriptor limit %s); "
        "beyond that, 503",
        cap,
        max_connections,
        "unlimited" if fd_limit == resource.RLIM_INFINITY else fd_limit,
    )
    return cap
