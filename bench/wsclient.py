"""A minimal WebSocket client for fan-out benchmarks: one asyncio Protocol per
connection, no task per connection and no library, so thousands of subscribers cost
the measuring process little. It records each received text frame with its arrival
time (wall clock, comparable with the server's event timestamps) and parses nothing
while measuring."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
Received = list[tuple[float, bytes]]


def _frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: masked, as the protocol requires (the zero key keeps it cheap)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return header + b"\0\0\0\0" + payload


class Connection(asyncio.Protocol):
    def __init__(self, path: str, host: str, subprotocol: str | None, received: Received) -> None:
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            + (f"Sec-WebSocket-Protocol: {subprotocol}\r\n" if subprotocol else "")
            + "\r\n"
        ).encode()
        self.received = received
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._next_text: asyncio.Future[bytes] | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        for future in (self.opened, self._next_text):
            if future is not None and not future.done():
                future.set_exception(ConnectionError("connection lost"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buffer[: self._buffer.find(b"\r\n")])
            del self._buffer[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode("latin-1")))
                return
            self._upgraded = True
            self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            opcode, size = buffer[0] & 0x0F, buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + size:
                return
            payload = bytes(buffer[start : start + size])
            del buffer[: start + size]
            if opcode == TEXT:
                if self._next_text is not None and not self._next_text.done():
                    self._next_text.set_result(payload)
                else:
                    self.received.append((time.time(), payload))
            elif opcode == PING:
                self.send(payload, PONG)
            elif opcode == CLOSE:
                if not self.closed.done():
                    self.closed.set_result(None)
                if self._transport is not None:
                    self._transport.close()

    def send(self, payload: bytes, opcode: int = TEXT) -> None:
        assert self._transport is not None
        self._transport.write(_frame(opcode, payload))

    def send_json(self, message: dict[str, Any]) -> None:
        self.send(json.dumps(message).encode())

    async def reply(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a message and return the next text frame (for handshakes, not measuring)."""
        self._next_text = asyncio.get_running_loop().create_future()
        self.send_json(message)
        answer: dict[str, Any] = json.loads(await self._next_text)
        self._next_text = None
        return answer

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self.send(struct.pack("!H", 1000), CLOSE)
            self._transport.close()


async def connect(
    host: str, port: int, path: str, received: Received, subprotocol: str | None = None
) -> Connection:
    loop = asyncio.get_running_loop()
    factory: Callable[[], Connection] = lambda: Connection(  # noqa: E731
        path, f"{host}:{port}", subprotocol, received
    )
    _, connection = await loop.create_connection(factory, host, port)
    await asyncio.wait_for(connection.opened, 30)
    return connection


async def open_many(
    count: int, opener: Callable[[int], Awaitable[Connection]], parallel: int = 100
) -> list[Connection]:
    """Open connections 0..count-1, `parallel` at a time (inside the listen backlog)."""
    gate = asyncio.Semaphore(parallel)

    async def one(index: int) -> Connection:
        async with gate:
            return await opener(index)

    return list(await asyncio.gather(*(one(index) for index in range(count))))
