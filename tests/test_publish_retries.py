"""A publish whose reply is lost is retried, and still stored and delivered once.

Between the bus and Redis sits a proxy that, when armed, lets the next publish
batch reach Redis, swallows Redis's reply and cuts the connection: Redis has run
the script, the bus saw only a connection error and sends the batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime.events import Event
from runtime.events.redis_bus import RedisEventBus
from tests.test_redis_faults import take
from tests.waiting import until


async def _relay(
    requests: Any, replies: Any, writer: asyncio.StreamWriter, up_writer: asyncio.StreamWriter
) -> None:
    """Run both directions until one ends, then cut both connections."""
    tasks = [asyncio.create_task(requests), asyncio.create_task(replies)]
    with contextlib.suppress(Exception):
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    for stream in (writer, up_writer):
        stream.transport.abort()


class Proxy:
    """A TCP proxy to Redis on a free loopback port; `_serve` relays a connection."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class ReplyDroppingProxy(Proxy):
    """A proxy that can drop the reply to the next script call."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port)
        self.armed = False
        self.dropped = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        sent_script = asyncio.Event()

        async def requests() -> None:
            while data := await reader.read(65536):
                if self.armed and b"EVALSHA" in data.upper():
                    sent_script.set()
                up_writer.write(data)
                await up_writer.drain()

        async def replies() -> None:
            while data := await up_reader.read(65536):
                if sent_script.is_set() and self.armed:
                    self.armed = False
                    self.dropped.set()
                    writer.transport.abort()  # Redis ran it; the bus never hears so
                    return
                writer.write(data)
                await writer.drain()

        await _relay(requests(), replies(), writer, up_writer)


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[ReplyDroppingProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    owned = ReplyDroppingProxy(port)
    await owned.start()
    yield owned
    await owned.stop()


async def started(url: str) -> RedisEventBus:
    bus = RedisEventBus(url, queue_limit=100, replay_limit=100)
    await bus.start()
    await asyncio.wait_for(bus.connected.wait(), 5)
    return bus


async def test_a_batch_retried_after_its_reply_was_lost_is_stored_and_delivered_once(
    redis_url: str, proxy: ReplyDroppingProxy
) -> None:
    database = redis_url.rsplit("/", 1)[1]
    publisher = await started(f"redis://127.0.0.1:{proxy.port}/{database}")
    watcher = await started(redis_url)  # straight to Redis
    session_id = uuid.uuid4()
    try:
        async with watcher.subscribe(session_id) as subscription:
            first = await publisher.publish(session_id, "default", "tool_update", {"n": 0})
            assert first is not None  # the script is loaded; the next call is EVALSHA
            proxy.armed = True
            for n in (1, 2, 3):  # one batch, after the reply to it is lost
                await publisher.publish(session_id, "default", "tool_update", {"n": n}, wait=False)
            await asyncio.wait_for(proxy.dropped.wait(), 10)
            await until(lambda: not publisher.pending_publishes, "the retry", 15)
            assert publisher.stats["publish_failures"] >= 1  # it did send again
            after = await publisher.publish(session_id, "default", "tool_update", {"n": 4})
            assert after is not None

            received: list[Event] = await take(subscription, 5)
            assert [e.data["n"] for e in received] == [0, 1, 2, 3, 4]
            log = await watcher.read_log(session_id, 0)
            assert [e.data["n"] for e in log.events] == [0, 1, 2, 3, 4]
            assert [e.id for e in log.events] == [e.id for e in received]
            assert after.id == first.id + 4  # no id was spent on a second copy
    finally:
        await publisher.forget_many([session_id])
        await publisher.stop()
        await watcher.stop()


class SubscribeDelayingProxy(Proxy):
    """A proxy that holds every SUBSCRIBE back for `delay` seconds (and what its
    connection sends after it), as a busy Redis may take another connection's
    commands first."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        super().__init__(upstream_port)
        self.delay = delay
        self.held = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def requests() -> None:
            while data := await reader.read(65536):
                if b"SUBSCRIBE" in data.upper():
                    self.held += 1
                    await asyncio.sleep(self.delay)  # the held-back command itself
                up_writer.write(data)
                await up_writer.drain()

        async def replies() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        await _relay(requests(), replies(), writer, up_writer)


async def test_an_event_published_right_after_subscribe_returns_is_delivered(
    redis_url: str,
) -> None:
    """`subscribe` returns once Redis has taken the channel's SUBSCRIBE: an event
    published by another replica the moment it returns is delivered, even when the
    SUBSCRIBE reaches Redis after that replica's publish would have."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    database = redis_url.rsplit("/", 1)[1]
    slow = SubscribeDelayingProxy(port, delay=0.5)
    await slow.start()
    watcher = await started(f"redis://127.0.0.1:{slow.port}/{database}")
    publisher = await started(redis_url)  # straight to Redis
    session_id = uuid.uuid4()
    try:
        async with watcher.subscribe(session_id) as subscription:
            assert slow.held >= 1  # the SUBSCRIBE was held back
            await publisher.publish(session_id, "default", "tool_update", {"n": 1})
            [event] = await take(subscription, 1)
            assert event.data == {"n": 1}
    finally:
        await publisher.forget_many([session_id])
        await publisher.stop()
        await watcher.stop()
        await slow.stop()
