"""The event streams of GraphQL over SSE (schema/sse.py): frames out, operations in.

An `EventStream` is the outgoing side of one `text/event-stream` response. Its
operations run as tasks that append `next`/`complete` frames to a bounded outbox;
`frames()` is the response body, which writes them in order, sends a `: keep-alive`
comment when idle, and ends the stream:

- distinct connections mode: after its one operation's `complete`;
- when the server shuts down: subscriptions stop at once, queries and mutations
  still running finish, and the stream ends without `complete` for what was cut off
  (graphql-sse clients treat that as a network error and retry, like the 1012 close
  of a WebSocket);
- when its app key is revoked: each running operation gets a last `next` with an
  `UNAUTHENTICATED` error and its `complete`;
- when the client goes away.

A full outbox makes the operations wait, so a client that does not read falls behind
on the event bus, which closes it (`SLOW_CONSUMER`) without slowing anyone else.

`StreamRegistry` holds single connection mode's reservations: a token per stream,
bound to the caller that reserved it, at most `max_per_client` per client address,
dropped if its stream is not opened within `open_within` seconds or when it ends.
Reservations live in the process that made them (route a client to one replica).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from schema.live import _cancel_until_done

logger = logging.getLogger(__name__)

OUTBOX_FRAMES = 256  # frames waiting for the client before operations wait too
RECENT_OPERATIONS = 64  # finished ids a late DELETE may still name
Encode = Callable[[object], str]
# Every operation's task, until it ends: a query or mutation outlives a stream that
# closes under it, and a task the loop alone refers to may be collected mid-flight.
_RUNNING: set[asyncio.Task[None]] = set()


def error_result(message: str, code: str, **extensions: object) -> dict[str, object]:
    error = {"message": message, "extensions": {"code": code, **extensions}}
    return {"data": None, "errors": [error]}


REVOKED = error_result(
    "the app key this stream was opened with was revoked; the stream is closed", "UNAUTHENTICATED"
)
INTERNAL = error_result("Internal server error.", "INTERNAL")


@dataclass(eq=False, slots=True)
class _Operation:
    task: asyncio.Task[None]
    streaming: bool  # a subscription: stopped, not awaited, when the server shuts down


class EventStream:
    def __init__(
        self,
        encode: Encode,
        *,
        token: str | None = None,
        owner: tuple[str, str | None] | None = None,
        client: str | None = None,
    ) -> None:
        """`token` None: distinct connections mode (one operation, then the end)."""
        self.token, self.owner, self.client = token, owner, client
        self.opened = token is None
        self.closed = False
        self.operations: dict[str, _Operation] = {}
        self.on_close: list[Callable[[], object]] = []
        self._encode = encode
        self._frames: list[str] = []
        self._room = asyncio.Event()
        self._room.set()
        self._wake = asyncio.Event()
        self._finishing = False  # ends once no operation runs and the outbox is empty
        self._interruption: str | None = None  # the last text, sent instead of the rest
        self._recent: deque[str] = deque(maxlen=RECENT_OPERATIONS)

    # -- operations -------------------------------------------------------------

    def start(self, key: str, work: Callable[[], Awaitable[None]], *, streaming: bool) -> None:
        """Run an operation; `work` sends its results, then it is completed."""
        task = asyncio.create_task(self._operate(key, work), name=f"confab-sse-op-{key}")
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
        self.operations[key] = _Operation(task, streaming)

    def stop(self, key: str) -> bool:
        """Stop an operation (the client asked); False if none runs under that id."""
        operation = self.operations.pop(key, None)
        if operation is not None:
            if operation.streaming:
                _cancel(operation.task)
            self._recent.append(key)
            self._room.set()  # if it waits to write, it finds it is no longer heard
        return operation is not None or key in self._recent

    async def _operate(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        try:
            try:
                await work()
            except Exception:
                logger.exception("a GraphQL over SSE operation failed")
                await self.send_result(key, INTERNAL)
            await self._put(key, _complete_frame(key))
        finally:
            operation = self.operations.get(key)
            if operation is not None and operation.task is asyncio.current_task():
                del self.operations[key]
                self._recent.append(key)
            if self.token is None:
                self._finishing = True
            self._wake.set()

    async def send_result(self, key: str, result: object) -> None:
        """An execution result (encoded by the view: its response size limit applies)."""
        await self.send_payload(key, self._encode(result))

    async def send_payload(self, key: str, payload: str) -> None:
        """An execution result already encoded as JSON."""
        await self._put(key, _next_frame(key, payload))

    async def _put(self, key: str, frame: str) -> None:
        """From the operation's own task; dropped once it no longer belongs to the
        stream (stopped, or the stream ended)."""
        current = asyncio.current_task()
        while True:
            operation = self.operations.get(key)
            if operation is None or operation.task is not current:
                return
            if len(self._frames) < OUTBOX_FRAMES:
                break
            self._room.clear()
            await self._room.wait()
        self._frames.append(frame)
        self._wake.set()

    # -- the end ------------------------------------------------------------------

    async def revoke(self) -> None:
        """The key is revoked: what is queued, each operation's last word, the end."""
        payload = self._encode(REVOKED)
        text = "".join(_next_frame(k, payload) + _complete_frame(k) for k in self.operations)
        self._interruption = text
        self._stop_operations()
        self._wake.set()
        if not self.opened:
            self.close()

    def close(self) -> None:
        """Idempotent: stops the subscriptions and forgets the stream."""
        if self.closed:
            return
        self.closed = True
        self._stop_operations()
        for callback in self.on_close:
            callback()

    def _stop_operations(self) -> None:
        """Subscriptions are cancelled; a query or mutation runs to its end, unheard
        (cancelled, a mutation could stop between its write and its event)."""
        for key, operation in list(self.operations.items()):
            if operation.streaming:
                _cancel(operation.task)
            del self.operations[key]
        self._room.set()

    def _shut_down(self) -> None:
        """Subscriptions end now; queries and mutations still answer."""
        self._finishing = True
        for key, operation in list(self.operations.items()):
            if operation.streaming:
                _cancel(operation.task)
                del self.operations[key]

    async def frames(self, shutting_down: asyncio.Event, keepalive: float) -> AsyncIterator[str]:
        """The response body; the stream is closed when it ends, however it ends."""
        stop = asyncio.ensure_future(shutting_down.wait())
        wake: asyncio.Future[Any] | None = None
        try:
            yield ":\n\n"  # some clients see the response only once a byte arrives
            while True:
                if self._frames:
                    text = "".join(self._frames)
                    self._frames.clear()
                    self._room.set()
                    yield text
                    continue
                if self._interruption is not None:
                    if self._interruption:
                        yield self._interruption
                    return
                if self._finishing and not self.operations:
                    return
                if stop.done() and not self._finishing:
                    self._shut_down()
                    yield ": the server is shutting down\n\n"
                    continue
                wake = asyncio.ensure_future(self._wake.wait())
                waiting: set[asyncio.Future[Any]] = {wake} if stop.done() else {wake, stop}
                done, _ = await asyncio.wait(
                    waiting, timeout=keepalive, return_when=asyncio.FIRST_COMPLETED
                )
                wake.cancel()
                self._wake.clear()  # before the state is looked at again: no wake-up lost
                if not done:
                    yield ": keep-alive\n\n"
        finally:
            stop.cancel()
            if wake is not None:
                wake.cancel()
            self.close()


def _next_frame(key: str, payload: str) -> str:
    if not key:
        return f"event: next\ndata: {payload}\n\n"
    return f'event: next\ndata: {{"id":{json.dumps(key)},"payload":{payload}}}\n\n'


def _complete_frame(key: str) -> str:
    if not key:
        return "event: complete\ndata:\n\n"  # the empty data makes EventSource fire
    return f'event: complete\ndata: {{"id":{json.dumps(key)}}}\n\n'


def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    _cancel_until_done(task)


class TooManyStreams(Exception):
    pass


class StreamRegistry:
    """Single connection mode's streams by token."""

    def __init__(self, *, max_per_client: int, open_within: float) -> None:
        self.max_per_client = max_per_client
        self._open_within = open_within
        self._streams: dict[str, EventStream] = {}
        self._per_client: dict[str | None, int] = {}

    def reserve(
        self, encode: Encode, owner: tuple[str, str | None], client: str | None
    ) -> EventStream:
        """A new stream for `owner`; raises TooManyStreams past the client's bound."""
        if self._per_client.get(client, 0) >= self.max_per_client:
            raise TooManyStreams
        token = secrets.token_urlsafe(32)
        stream = EventStream(encode, token=token, owner=owner, client=client)
        self._streams[token] = stream
        self._per_client[client] = self._per_client.get(client, 0) + 1
        stream.on_close.append(lambda: self._forget(stream))
        asyncio.get_running_loop().call_later(self._open_within, self._expire, stream)
        return stream

    def get(self, token: str) -> EventStream | None:
        return self._streams.get(token)

    def _expire(self, stream: EventStream) -> None:
        if not stream.opened:
            stream.close()

    def _forget(self, stream: EventStream) -> None:
        assert stream.token is not None
        if self._streams.pop(stream.token, None) is not None:
            left = self._per_client[stream.client] - 1
            if left:
                self._per_client[stream.client] = left
            else:
                del self._per_client[stream.client]
