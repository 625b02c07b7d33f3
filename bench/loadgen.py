"""A minimal keep-alive HTTP/1.1 load generator (asyncio streams, no client library),
so the measuring side costs as little as possible next to the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class HttpConnection:
    """One keep-alive connection: a request at a time, its status and body back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self._reader = reader
        self._writer = writer
        self._host = host

    @classmethod
    async def open(cls, url: str) -> HttpConnection:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}")

    def encode(self, request: Request) -> bytes:
        return request.encode(self._host)

    async def send(self, payload: bytes) -> tuple[int, bytes]:
        """Write an encoded request; read the response (Content-Length framed)."""
        self._writer.write(payload)
        status_line = await self._reader.readline()
        length = 0
        chunked = False
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True  # some Node servers (the bench's peers) answer so
        if chunked:
            return int(status_line.split()[1]), await self._chunks()
        return int(status_line.split()[1]), await self._reader.readexactly(length)

    async def _chunks(self) -> bytes:
        body = b""
        while True:
            size = int((await self._reader.readline()).split(b";")[0], 16)
            chunk = await self._reader.readexactly(size + 2)  # and its CRLF
            if size == 0:
                return body
            body += chunk[:-2]

    def close(self) -> None:
        self._writer.close()


async def _connection(
    url: str, request: Request, until: float, latencies: list[float], errors: list[int]
) -> None:
    connection = await HttpConnection.open(url)
    payload = connection.encode(request)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            status, _ = await connection.send(payload)
            latencies.append((time.perf_counter() - started) * 1000)
            if status >= 400:
                errors.append(status)
    finally:
        connection.close()


async def run(url: str, request: Request, connections: int, seconds: float) -> dict[str, float]:
    """Keep `connections` requests in flight for `seconds`; throughput and latency."""
    latencies: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(url, request, until, latencies, errors) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. HTTP {errors[0]} for {request}")
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "requests_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }
