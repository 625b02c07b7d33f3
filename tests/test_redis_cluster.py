"""Confab on a Redis Cluster of its own (3 masters, 3 replicas, on loopback).

The bus contract, replicas, subscriptions and turn leases are the existing tests,
run here unchanged against the cluster; then what only a cluster can do to us: a
slot moving mid-stream, a master killed mid-stream, and classic `PUBLISH` (which
every node would rebroadcast) never used. The killed master goes last: the
cluster then runs on with one master's replica promoted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from runtime.coherence_redis import RedisCoherence
from runtime.events import RESYNC_REQUIRED, Event, EventBus, Subscription
from runtime.events.redis_cluster_bus import RedisClusterEventBus
from runtime.events.session_keys import session_keys
from runtime.leases_redis import RedisLeases
from runtime.redis_clients import parse_cluster_url, redis_client, redis_kind
from runtime.shared_state import redis_url
from schema.persisted_redis import SharedDocuments
from tests.conftest import unavailable
from tests.owned_redis_cluster import OwnedRedisCluster, command, migrate_slot

# The existing tests, collected here again: their fixtures (`bus`, `live_env`) are
# the cluster's in this module. Every test of those modules that uses the event
# bus; the other crash-recovery tests run one process on SQLite (no Redis at all).
from tests.test_crash_recovery import (  # noqa: F401
    test_a_surviving_replica_answers_the_killed_replicas_messages,
    test_turns_of_one_session_never_overlap_across_replicas,
)
from tests.test_event_bus import (  # noqa: F401
    test_a_current_cursor_resumes_quietly,
    test_a_cursor_older_than_the_log_gets_resync_required,
    test_a_cursor_the_log_never_had_gets_resync_required,
    test_a_slow_subscriber_is_closed_and_a_fast_one_is_unaffected,
    test_events_of_other_sessions_are_not_delivered,
    test_forget_drops_the_replay_log,
    test_live_events_carry_the_envelope_and_increasing_ids,
    test_resume_from_a_cursor_replays_exactly_the_missed_events,
    test_resume_while_publishing_has_no_gap_and_no_duplicate,
    test_subscriber_count_and_cleanup,
)
from tests.test_interrupt_replicas import (  # noqa: F401
    test_an_interrupt_on_another_replica_stops_the_turn,
    test_interrupting_an_idle_session_elsewhere_is_a_no_op,
    test_the_interrupt_mutation_crosses_replicas_too,
)
from tests.test_replicas import (  # noqa: F401
    test_a_system_event_from_one_replica_reaches_snapshots_on_the_other,
    test_a_write_on_one_replica_is_read_at_once_on_the_other,
    test_is_processing_reads_the_same_on_every_replica,
    test_rest_and_graphql_across_replicas,
    test_sse_subscribers_on_one_replica_see_events_caused_on_another,
)
from tests.test_subscriptions import (  # noqa: F401
    server,
    test_another_apps_session_is_not_found,
    test_bad_key_is_rejected_at_connection_init,
    test_connection_init_timeout,
    test_cross_origin_handshakes_need_an_allowed_origin,
    test_each_event_type_arrives,
    test_events_cross_replicas,
    test_events_of_another_app_are_never_delivered,
    test_expired_cursor_gets_resync_required,
    test_key_in_connection_init_payload,
    test_key_in_upgrade_headers,
    test_legacy_graphql_ws_protocol,
    test_post_system_notice_validates,
    test_resume_after_a_cursor_gets_exactly_the_missed_events,
    test_server_shutdown_closes_subscriptions_cleanly,
    test_subscribing_before_the_session_exists,
    test_subscriptions_per_connection_are_limited,
    test_typed_subscriptions,
    test_types_filter,
)
from tests.waiting import until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnedRedisCluster]:
    import shutil

    if shutil.which("redis-server") is None:
        unavailable("redis-server", "the binary is not on PATH")
    owned = OwnedRedisCluster(tmp_path_factory.mktemp("cluster"))
    owned.start()
    try:
        yield owned
    finally:
        owned.stop()


@pytest.fixture(scope="module")
def live_env(postgres_url: str, apps_file: Path, cluster: OwnedRedisCluster) -> dict[str, str]:
    """The conftest's server environment, with the cluster as the event bus."""
    from tests.live import cli

    env = {
        "DATABASE_URL": postgres_url,
        "CONFAB_EVENT_BUS": cluster.url,
        "CONFAB_CONFIG": str(apps_file),
        "CONFAB_ALLOWED_ORIGINS": "https://app.example",
        "CONFAB_WS_MAX_SUBSCRIPTIONS": "3",
        "CONFAB_WS_INIT_TIMEOUT": "1",
    }
    cli(env, "migrate")
    return env


async def connected(url: str, queue_limit: int = 50, replay_limit: int = 20) -> EventBus:
    bus = RedisClusterEventBus(url, queue_limit=queue_limit, replay_limit=replay_limit)
    await bus.start()
    await asyncio.wait_for(bus.connected.wait(), 10)
    return bus


@pytest.fixture
async def bus(cluster: OwnedRedisCluster) -> AsyncIterator[EventBus]:
    event_bus = await connected(cluster.url)
    yield event_bus
    await event_bus.stop()


def slot_of(session_id: uuid.UUID) -> int:
    return key_slot(session_keys(session_id, cluster=True).channel.encode())


def shard_subscribers(client: Any, channel: str) -> int:
    """`PUBSUB SHARDNUMSUB` for one channel (the reply is [channel, count])."""
    _, count = command(client, "PUBSUB", "SHARDNUMSUB", channel)
    return int(count)


def commandstats(cluster: OwnedRedisCluster) -> dict[str, int]:
    """Calls per command, summed over every live node."""
    totals: dict[str, int] = {}
    for node in cluster.live_nodes():
        client = node.client()
        try:
            for name, stats in client.info("commandstats").items():
                totals[name] = totals.get(name, 0) + int(stats["calls"])
        finally:
            client.close()
    return totals


class Collected:
    """Everything one subscription receives, in arrival order."""

    def __init__(self, subscription: Subscription) -> None:
        self.events: list[Event] = []
        self.arrivals: list[float] = []
        self._task = asyncio.create_task(self._run(subscription))

    async def _run(self, subscription: Subscription) -> None:
        async for event in subscription:
            self.events.append(event)
            self.arrivals.append(time.monotonic())

    @property
    def numbers(self) -> list[int]:
        return [e.data["n"] for e in self.events if e.type != RESYNC_REQUIRED]

    def stop(self) -> None:
        self._task.cancel()


# -- the one rule for URLs, and the clients it hands out ------------------------------


def test_the_url_decides_memory_single_redis_or_cluster() -> None:
    assert redis_kind("memory://") == "memory"
    assert redis_kind("redis://h:6379/0") == redis_kind("unix:///tmp/r.sock") == "redis"
    assert redis_kind("redis+cluster://a:7000,b:7001/") == "cluster"
    assert redis_kind("rediss+cluster://a:7000/") == "cluster"
    assert redis_url("memory://") is None
    assert redis_url("rediss+cluster://a:7000/") == "rediss+cluster://a:7000/"
    with pytest.raises(ValueError, match="unsupported URL"):
        redis_kind("cluster://a:7000")
    address = parse_cluster_url("rediss+cluster://user:s%40cret@a:7000,b:7001,[::1]:7002/")
    assert address.seeds == [("a", 7000), ("b", 7001), ("::1", 7002)]
    assert address.options["ssl"] is True
    assert (address.options["username"], address.options["password"]) == ("user", "s@cret")
    with pytest.raises(ValueError, match="only database 0"):
        parse_cluster_url("redis+cluster://a:7000/3")


async def test_coherence_leases_and_persisted_queries_work_on_the_cluster(
    cluster: OwnedRedisCluster,
) -> None:
    coherence = RedisCoherence(cluster.url)
    leases = RedisLeases(cluster.url)
    documents = SharedDocuments(cluster.url)
    try:
        session_id = uuid.uuid4()
        await coherence.written(session_id, 3)
        assert await coherence.is_current(session_id, 3)
        assert not await coherence.is_current(session_id, 2)
        await coherence.deleted(session_id)
        assert not await coherence.is_current(session_id, 3)

        name = f"turn:{uuid.uuid4()}"
        assert await leases.acquire(name, 5)
        assert not await leases.acquire(name, 5)
        assert await leases.held(name)
        assert await leases.renew(name, 5)
        await leases.release(name)
        assert not await leases.held(name)

        digest = uuid.uuid4().hex * 2
        await documents.put(digest, "{ apps { name } }")
        assert await documents.get(digest) == "{ apps { name } }"
    finally:
        await coherence.aclose()
        await leases.aclose()
        await documents.aclose()


async def test_one_shard_listener_connection_per_node_for_many_subscribers(
    cluster: OwnedRedisCluster, bus: EventBus
) -> None:
    session_id = uuid.uuid4()
    channel = session_keys(session_id, cluster=True).channel
    owner = cluster.master_of_slot(slot_of(session_id)).client()
    try:
        async with contextlib.AsyncExitStack() as stack:
            subscriptions = [
                await stack.enter_async_context(bus.subscribe(session_id)) for _ in range(120)
            ]
            assert shard_subscribers(owner, channel) == 1
            await bus.publish(session_id, "default", "system_notice", {"message": "all"})
            for subscription in subscriptions:
                event = await asyncio.wait_for(anext(subscription), 5)
                assert event.data["message"] == "all"
        await until(
            lambda: shard_subscribers(owner, channel) == 0,
            "the shard channel to be unsubscribed",
        )
    finally:
        owner.close()


async def test_a_thousand_publishes_use_sharded_pub_sub_only(
    cluster: OwnedRedisCluster, bus: EventBus
) -> None:
    for node in cluster.live_nodes():
        client = node.client()
        command(client, "CONFIG", "RESETSTAT")
        client.close()
    sessions = [uuid.uuid4() for _ in range(20)]
    async with contextlib.AsyncExitStack() as stack:
        subscriptions = [await stack.enter_async_context(bus.subscribe(s)) for s in sessions]
        for n in range(50):
            for session_id in sessions:
                await bus.publish(session_id, "default", "tool_update", {"n": n}, wait=False)
        for subscription in subscriptions:
            got = [await asyncio.wait_for(anext(subscription), 10) for _ in range(50)]
            assert [e.data["n"] for e in got] == list(range(50))
    stats = commandstats(cluster)
    assert stats.get("cmdstat_publish", 0) == 0
    assert stats.get("cmdstat_spublish", 0) >= 1_000


# -- a slot moves mid-stream ---------------------------------------------------------


async def test_a_publish_sent_again_after_a_lost_reply_is_stored_once(
    cluster: OwnedRedisCluster,
) -> None:
    """What a batch retried after its master died runs: the same publisher token
    and serial again. The script answers with the stored copy and writes nothing."""
    from runtime.events.envelope import body_json, first_cursor, from_json, utc_now
    from runtime.events.publish_script import CLUSTER

    client = redis_client(cluster.url)
    session_id = uuid.uuid4()
    keys = session_keys(session_id, cluster=True)
    script = client.register_script(CLUSTER)

    async def publish(serial: int, n: int) -> Any:
        body = body_json("tool_update", session_id, "default", utc_now(), {"n": n})
        args: list[Any] = [first_cursor(), body, 100, keys.channel, 0, "publisher-a", serial, 0]
        return await script(keys=[keys.counter, keys.stream, keys.marks], args=args)

    try:
        first = from_json(await publish(1, 1))
        again = from_json(await publish(1, 1))
        second = from_json(await publish(2, 2))
        assert again == first
        assert second.id == first.id + 1
        assert await client.xlen(keys.stream) == 2
    finally:
        await client.delete(*keys.stored)
        await client.aclose()


async def test_a_slot_migration_mid_stream_loses_nothing_and_moves_only_its_channel(
    cluster: OwnedRedisCluster,
) -> None:
    publisher = await connected(cluster.url, queue_limit=1_000, replay_limit=1_000)
    subscriber = await connected(cluster.url, queue_limit=1_000, replay_limit=1_000)
    assert isinstance(subscriber, RedisClusterEventBus)
    sessions: list[uuid.UUID] = []
    while len(sessions) < 4:  # four sessions, four different slots
        candidate = uuid.uuid4()
        if slot_of(candidate) not in {slot_of(s) for s in sessions}:
            sessions.append(candidate)
    moving = sessions[0]
    source = cluster.master_of_slot(slot_of(moving))
    target = next(m for m in cluster.masters_now() if m.port != source.port)
    total = 300
    try:
        async with contextlib.AsyncExitStack() as stack:
            collected = [
                Collected(await stack.enter_async_context(subscriber.subscribe(s)))
                for s in sessions
            ]

            async def stream(session_id: uuid.UUID) -> None:
                for n in range(total):
                    await publisher.publish(session_id, "default", "tool_update", {"n": n})
                    await asyncio.sleep(0.002)

            streams = [asyncio.create_task(stream(s)) for s in sessions]
            await until(lambda: len(collected[0].events) >= 50, "the stream to be under way")
            await asyncio.to_thread(migrate_slot, cluster, slot_of(moving), target)
            await asyncio.gather(*streams)
            for c in collected:
                await until(lambda c=c: len(c.numbers) >= total, "every event")
            for c in collected:
                c.stop()
        assert cluster.master_of_slot(slot_of(moving)).port == target.port
        for c in collected:
            assert c.numbers == list(range(total))
        assert subscriber.stats["resubscribed"] == 1  # the moved channel, no other
        assert publisher.stats["redirects"] >= 1
    finally:
        await publisher.stop()
        await subscriber.stop()


# -- a master dies mid-stream (last: the cluster stays one replica short) -------------


async def test_a_session_whose_publish_fails_never_holds_up_others_on_its_node(
    cluster: OwnedRedisCluster, bus: EventBus
) -> None:
    """One session's script fails on its node (its id counter is not a number): that
    session waits and retries alone, while another session of the same node goes
    on; once the key is mended, the waiting event is published, once."""
    poisoned = uuid.uuid4()
    owner = cluster.master_of_slot(slot_of(poisoned))
    neighbour = next(
        candidate
        for candidate in (uuid.uuid4() for _ in range(1_000))
        if cluster.master_of_slot(slot_of(candidate)).port == owner.port
    )
    client = owner.client()
    counter = session_keys(poisoned, cluster=True).counter
    try:
        command(client, "HSET", counter, "not", "a number")
        async with bus.subscribe(poisoned) as stuck, bus.subscribe(neighbour) as moving:
            await bus.publish(poisoned, "default", "tool_update", {"n": 0}, wait=False)
            for n in range(5):
                await asyncio.wait_for(
                    bus.publish(neighbour, "default", "tool_update", {"n": n}), 10
                )
                event = await asyncio.wait_for(anext(moving), 10)
                assert event.data["n"] == n
            assert bus.stats["publish_failures"] > 0
            command(client, "DEL", counter)
            event = await asyncio.wait_for(anext(stuck), 10)
            assert (event.type, event.data["n"]) == ("tool_update", 0)
    finally:
        client.close()


async def test_killing_a_master_mid_stream_loses_and_duplicates_nothing(
    cluster: OwnedRedisCluster,
) -> None:
    publisher = await connected(cluster.url, queue_limit=2_000, replay_limit=1_000)
    subscriber = await connected(cluster.url, queue_limit=2_000, replay_limit=1_000)
    sessions = [uuid.uuid4() for _ in range(15)]
    victim = cluster.master_of_slot(slot_of(sessions[0]))
    on_victim = {s for s in sessions if cluster.master_of_slot(slot_of(s)).port == victim.port}
    total, interval = 400, 0.02  # 50 events a second per session
    try:
        async with contextlib.AsyncExitStack() as stack:
            collected = {
                s: Collected(await stack.enter_async_context(subscriber.subscribe(s)))
                for s in sessions
            }

            async def stream(session_id: uuid.UUID) -> None:
                for n in range(total):
                    # Not waiting for the store: a dead shard's events queue up
                    # while every other session goes on.
                    await publisher.publish(
                        session_id, "default", "tool_update", {"n": n}, wait=False
                    )
                    await asyncio.sleep(interval)

            streams = [asyncio.create_task(stream(s)) for s in sessions]
            first = collected[sessions[0]]
            await until(lambda: len(first.events) >= 100, "the stream to be under way")
            cluster.kill(victim)
            await asyncio.gather(*streams)
            for c in collected.values():
                await until(lambda c=c: len(c.numbers) >= total, "every event", 60)
            for c in collected.values():
                c.stop()
        for session_id, c in collected.items():
            assert c.numbers == list(range(total)), session_id
        assert publisher.pending_publishes == 0
        # Not asserted (wall clock), but worth reading: how long the healthy
        # shards' subscribers went without an event.
        healthy = [c for s, c in collected.items() if s not in on_victim]
        pause = max(
            (b - a for c in healthy for a, b in zip(c.arrivals, c.arrivals[1:], strict=False)),
            default=0.0,
        )
        print(f"\nlongest pause on a healthy shard: {pause:.3f} s; {len(on_victim)} sessions moved")
    finally:
        await publisher.stop()
        await subscriber.stop()
