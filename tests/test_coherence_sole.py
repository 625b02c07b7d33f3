"""The sole lease (runtime/coherence_sole.py): a replica alone on its Redis answers
sessions it checked in its sole period without asking Redis again, and another
replica's write is answered only once the lone one has stopped trusting its cache.

Each test owns a Redis database of its own (below the workers' shared ones), so
no other test's replicas are present in it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as redis
from prometheus_client.parser import text_string_to_metric_families

from runtime.coherence_redis import RedisCoherence
from tests.conftest import new_id
from tests.live import post
from tests.processes import ServerProcess, running
from tests.waiting import until


@pytest.fixture
async def own_url(redis_url: str) -> AsyncIterator[str]:
    prefix, _, number = redis_url.rpartition("/")
    url = f"{prefix}/{int(number) - 6}"  # 7 and 8 for the two workers' 13 and 14
    client = redis.Redis.from_url(url)
    await client.flushdb()
    try:
        yield url
    finally:
        await client.flushdb()
        await client.aclose()


async def raise_behind_its_back(url: str, session_id: uuid.UUID, version: int) -> None:
    """A version write no replica makes: only a check that asks Redis can see it."""
    client = redis.Redis.from_url(url)
    try:
        await client.set(f"confab:ver:{session_id}", version)
    finally:
        await client.aclose()


async def started_alone(url: str) -> RedisCoherence:
    coherence = RedisCoherence(url)
    await coherence.start()
    await until(coherence.alone, "the sole lease")
    return coherence


async def test_a_lone_replica_answers_checked_sessions_without_asking_redis(own_url: str) -> None:
    lone = await started_alone(own_url)
    checked, unchecked = uuid.uuid4(), uuid.uuid4()
    try:
        await lone.written(checked, 3)
        await lone.written(unchecked, 3)
        assert await lone.is_current(checked, 3)  # asked once in the sole period
        await raise_behind_its_back(own_url, checked, 9)
        await raise_behind_its_back(own_url, unchecked, 9)
        assert await lone.is_current(checked, 3)  # not asked again
        assert not await lone.is_current(unchecked, 3)  # never checked: asked
    finally:
        await lone.aclose()


async def test_copies_checked_before_the_sole_period_are_checked_again(own_url: str) -> None:
    replica = RedisCoherence(own_url)
    session_id = uuid.uuid4()
    try:
        await replica.written(session_id, 3)
        assert await replica.is_current(session_id, 3)  # checked, but not alone yet
        await replica.start()
        await until(replica.alone, "the sole lease")
        await raise_behind_its_back(own_url, session_id, 5)
        assert not await replica.is_current(session_id, 3)
    finally:
        await replica.aclose()


async def test_another_replicas_write_waits_out_the_lease(own_url: str) -> None:
    lone = await started_alone(own_url)
    other = RedisCoherence(own_url)  # not started: its writes alone make it present
    session_id = uuid.uuid4()
    try:
        await lone.written(session_id, 3)
        assert await lone.is_current(session_id, 3)
        await other.written(session_id, 4)
        # Answered only now: the lone replica no longer trusts its copy, and sees it.
        assert not lone.alone()
        assert not await lone.is_current(session_id, 3)
        assert await lone.is_current(session_id, 4)
    finally:
        await other.aclose()
        await lone.aclose()


async def test_two_replicas_both_check(own_url: str) -> None:
    first = await started_alone(own_url)
    second = RedisCoherence(own_url)
    await second.start()
    try:
        await until(lambda: not first.alone(), "the first replica giving up its lease")
        session_id = uuid.uuid4()
        await second.written(session_id, 2)
        assert await first.is_current(session_id, 2)
        await raise_behind_its_back(own_url, session_id, 3)
        assert not await first.is_current(session_id, 2)
        assert not await second.is_current(session_id, 2)
        assert not second.alone()
    finally:
        await second.aclose()
        await first.aclose()


async def test_a_deletion_by_another_replica_waits_out_the_lease(own_url: str) -> None:
    lone = await started_alone(own_url)
    other = RedisCoherence(own_url)
    session_id = uuid.uuid4()
    try:
        await lone.written(session_id, 3)
        assert await lone.is_current(session_id, 3)
        await other.deleted(session_id)
        assert not lone.alone()
        assert not await lone.is_current(session_id, 3)
    finally:
        await other.aclose()
        await lone.aclose()


def sole_writer(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        if family.name == "confab_sole_writer":
            return family.samples[0].value
    raise AssertionError("no confab_sole_writer metric")


READ = "query($id: ID!) { session(id: $id) { title } }"
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }"


async def test_a_second_server_joining_a_lone_one_is_read_at_once(
    live_env: dict[str, str], own_url: str, tmp_path: Path
) -> None:
    env = {**live_env, "CONFAB_EVENT_BUS": own_url}
    session_id = new_id()
    with running(env, tmp_path / "a.log") as lone:
        await until(lambda: sole_writer(lone) == 1, "the lone server's lease")
        await post(lone, "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
        assert (await post(lone, READ, id=session_id))["session"]["title"] == "New chat"
        with running(env, tmp_path / "b.log") as joined:
            # At once, while the first may still hold its lease: the write is
            # answered only when the first will check, so its next read sees it.
            await post(joined, RENAME, id=session_id, t="renamed on b")
            assert (await post(lone, READ, id=session_id))["session"]["title"] == "renamed on b"
            await until(lambda: sole_writer(lone) == 0, "the lease given up")
            assert sole_writer(joined) == 0
            await post(joined, RENAME, id=session_id, t="again")
            assert (await post(lone, READ, id=session_id))["session"]["title"] == "again"
