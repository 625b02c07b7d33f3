"""Which Redis a URL names, and the one factory every Redis user gets its client from.

`CONFAB_EVENT_BUS` decides for the bus, session coherence, turn leases and the
shared persisted-query store alike:

- `memory://`: one process, no Redis.
- `redis://`, `rediss://`, `unix://`: one Redis server (or a primary behind a
  failover proxy), as redis-py parses it.
- `redis+cluster://host:port[,host:port...]/`, `rediss+cluster://...` (TLS): a
  Redis Cluster, reached through any of the listed seed nodes; the rest of the
  topology is discovered. Credentials go before the first host
  (`redis+cluster://user:pass@h1:7000,h2:7000/`); query options (e.g.
  `?ssl_cert_reqs=none`) are passed to every node's connections as redis-py parses
  them for a single server. A database number other than 0 is refused (a cluster
  has only database 0).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import urlsplit

if TYPE_CHECKING:  # redis is imported only where a Redis is used
    from redis.asyncio import ConnectionPool, Redis, RedisCluster

    AnyRedis: TypeAlias = Redis | RedisCluster

Kind = Literal["memory", "redis", "cluster"]

SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def redis_kind(url: str) -> Kind:
    """The one rule: what a `CONFAB_EVENT_BUS` URL names (ValueError if nothing)."""
    if url.startswith("memory://"):
        return "memory"
    if url.startswith(CLUSTER_SCHEMES):
        return "cluster"
    if url.startswith(SINGLE_SCHEMES):
        return "redis"
    raise ValueError(
        f"CONFAB_EVENT_BUS: unsupported URL {url!r} "
        "(memory://, redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://)"
    )


@dataclass(frozen=True, slots=True)
class ClusterAddress:
    """A cluster URL taken apart: its seed nodes and the options for every node."""

    seeds: list[tuple[str, int]]
    options: dict[str, Any]


def parse_cluster_url(url: str) -> ClusterAddress:
    from redis.connection import parse_url

    scheme, _, rest = url.partition("://")
    if scheme not in ("redis+cluster", "rediss+cluster"):
        raise ValueError(f"not a Redis Cluster URL: {url!r}")
    parts = urlsplit(f"//{rest}")
    netloc = parts.netloc
    credentials, _, hosts = netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not item.strip():
            continue
        if not sep:
            host, port = item.strip(), "6379"
        seeds.append((host.strip("[]"), int(port)))
    if not seeds:
        raise ValueError(f"a Redis Cluster URL names at least one host:port: {url!r}")
    # The options redis-py would take from a single-server URL (TLS from the
    # scheme, credentials, query options), applied to every node.
    single = "rediss" if scheme == "rediss+cluster" else "redis"
    at = f"{credentials}@" if credentials else ""
    query = f"?{parts.query}" if parts.query else ""
    first = f"{single}://{at}{seeds[0][0]}:{seeds[0][1]}{parts.path}{query}"
    options: dict[str, Any] = parse_url(first)  # type: ignore[no-untyped-call]
    for key in ("host", "port"):
        options.pop(key, None)
    if options.pop("db", 0) not in (0, None):
        raise ValueError("a Redis Cluster has only database 0: drop the /N from the URL")
    if options.pop("connection_class", None) is not None:
        options["ssl"] = True
    return ClusterAddress(seeds, options)


# Connections per client (per node of a cluster). A command that finds them all
# busy waits up to POOL_WAIT seconds for one to come back instead of failing:
# redis-py's own pools raise "Too many connections" at once, which under a burst
# (hundreds of subscribers reading the replay log together) lost reads and
# coherence writes.
POOL_SIZE = 64
POOL_WAIT = 5.0


def redis_client(url: str, **options: Any) -> AnyRedis:
    """A client for the Redis the URL names: `Redis`, or `RedisCluster` for a cluster,
    each with a bounded pool that makes a command wait for a free connection.

    `options` are connection options (timeouts, retry) for every connection.
    """
    from redis.asyncio import Redis
    from redis.asyncio.cluster import ClusterNode

    kind = redis_kind(url)
    if kind == "cluster":
        address = parse_cluster_url(url)
        merged = {**options, **address.options}
        nodes = [ClusterNode(host, port) for host, port in address.seeds]
        return _waiting_cluster()(
            startup_nodes=nodes,
            # A dead master's slots stop; the others keep serving.
            require_full_coverage=False,
            max_connections=POOL_SIZE,
            **merged,
        )
    if kind == "redis":
        return Redis.from_pool(_waiting_pool().from_url(url, max_connections=POOL_SIZE, **options))
    raise ValueError(f"{url!r} names no Redis")


def node_client(url: str, host: str, port: int, **options: Any) -> Redis:
    """A plain client for one node of the cluster the URL names (the bus's own
    per-node connections: pipelines and shard listeners it routes itself)."""
    from redis.asyncio import Redis, SSLConnection

    merged = {**options, **parse_cluster_url(url).options}
    if merged.pop("ssl", False):
        merged["connection_class"] = SSLConnection
    return Redis.from_pool(
        _waiting_pool()(host=host, port=port, max_connections=POOL_SIZE, **merged)
    )


@functools.cache
def _waiting_pool() -> type[ConnectionPool]:
    """A ConnectionPool that, with every connection in use, waits up to POOL_WAIT
    seconds for one to come back. redis-py's BlockingConnectionPool does too, but
    takes a condition and a timeout on every command (about a tenth of a cached
    read's time); this one only when the pool is exhausted."""
    import asyncio
    from collections import deque

    from redis.asyncio import ConnectionPool
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import MaxConnectionsError

    class WaitingConnectionPool(ConnectionPool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._waiters: deque[asyncio.Future[None]] = deque()

        async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
            deadline: float | None = None
            while True:
                if self.can_get_connection():
                    try:
                        return await super().get_connection()  # type: ignore[no-untyped-call]
                    except MaxConnectionsError:
                        pass  # another command took the last one first
                loop = asyncio.get_running_loop()
                deadline = deadline or loop.time() + POOL_WAIT
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append(waiter)
                try:
                    await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise RedisConnectionError("no Redis connection free") from None
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

        async def release(self, connection: Any) -> None:
            await super().release(connection)
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    break

    return WaitingConnectionPool


@functools.cache
def _waiting_cluster() -> type[RedisCluster]:
    """RedisCluster whose commands wait for one of POOL_SIZE slots: its node pools
    have no waiting mode (a busy node raises `MaxConnectionsError`), so at most
    POOL_SIZE commands of the client are in flight, on any nodes."""
    import asyncio

    from redis.asyncio import RedisCluster
    from redis.exceptions import ConnectionError as RedisConnectionError

    class WaitingRedisCluster(RedisCluster):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._slots = asyncio.Semaphore(POOL_SIZE)

        async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            try:
                async with asyncio.timeout(POOL_WAIT):
                    await self._slots.acquire()
            except TimeoutError:
                raise RedisConnectionError("no Redis connection free") from None
            try:
                return await super().execute_command(*args, **kwargs)
            finally:
                self._slots.release()

    return WaitingRedisCluster
