"""Clients that misbehave on purpose, for the edge tests.

Raw sockets, so that what is sent (and what is not) is exactly what the test
says: a body announced and never finished, headers a byte at a time, sockets
opened and left idle. A server may answer and close while such a client is still
sending; the helpers then stop sending and read what came, as a careful client
(or httpx) does.

`python -m tests.edge_clients hold PORT HEADERS BODIES INTERVAL` holds slow
connections from a process of its own (so that trickling them does not slow the
test's own measurements): it prints `ready` once every connection is open, then
sends each one a byte every INTERVAL seconds until its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import socket
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

HOST = "127.0.0.1"
MiB = 1024 * 1024


def raise_fd_limit() -> int:
    """This process may hold as many sockets as the system lets it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> tuple[int, int]:
    """Resident memory and its high-water mark, in KiB, from /proc."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; the rest follows its ")".
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pid: int, busy: float = 0.2, window: float = 0.5, timeout: float = 30) -> None:
    """Until the process uses less than `busy` of a CPU over `window` seconds:
    whatever burst of work came before (accepting thousands of connections) is
    over."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        used, started = cpu_seconds(pid), time.monotonic()
        time.sleep(window)
        if cpu_seconds(pid) - used < busy * (time.monotonic() - started):
            return
    raise TimeoutError(f"process {pid} still busy after {timeout} s")


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def parse_response(data: bytes) -> RawResponse | None:
    """The first complete response in `data` (Content-Length framed), or None."""
    head, found, rest = data.partition(b"\r\n\r\n")
    if not found:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if len(rest) < length:
        return None
    return RawResponse(int(lines[0].split()[1]), headers, rest[:length])


async def connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
    return sock


async def read_response(sock: socket.socket, timeout: float = 30) -> RawResponse:
    """Read until a whole response came; a reset after it does not matter."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(timeout):
        while (response := parse_response(data)) is None:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionError(f"closed before a whole response: {data[:200]!r}")
            data += chunk
    return response


async def read_until_closed(sock: socket.socket, timeout: float = 30) -> bytes:
    """Everything the server sends until it closes the connection (EOF or reset)."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: confab.test"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def oversized_upload(
    port: int, path: str, size: int, *, chunked: bool, headers: dict[str, str] | None = None
) -> tuple[RawResponse, bool]:
    """Start sending a `size`-byte body (announced by Content-Length, or chunked
    with no length) as fast as the server takes it; return its answer and whether
    it then closed the connection."""
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(size)}
    head = request_head(
        "POST", path, {"Content-Type": "application/json", **(headers or {}), **framing}
    )
    sock = await connect(port)
    try:
        await asyncio.get_running_loop().sock_sendall(sock, head)
        sender = asyncio.create_task(_send_body(sock, size, chunked))
        try:
            response = await read_response(sock)
            closed = await _closes(sock)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    finally:
        sock.close()
    return response, closed


async def _send_body(sock: socket.socket, size: int, chunked: bool) -> None:
    loop = asyncio.get_running_loop()
    piece = b" " * 65536
    frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    sent = 0
    with contextlib.suppress(OSError):
        while sent < size:
            await loop.sock_sendall(sock, frame)
            sent += len(piece)


async def _closes(sock: socket.socket, timeout: float = 30) -> bool:
    """True once the server closed (EOF or reset); False if it sent more instead."""
    return await read_until_closed(sock, timeout) == b""


async def roundtrip(port: int, raw_request: bytes, timeout: float = 30) -> RawResponse:
    sock = await connect(port)
    try:
        await asyncio.get_running_loop().sock_sendall(sock, raw_request)
        return await read_response(sock, timeout)
    finally:
        sock.close()


class KeepAliveProbe:
    """One kept-alive connection sending `GET /healthz` again and again (blocking
    socket: nothing else runs in the probing thread while it waits)."""

    REQUEST = request_head("GET", "/healthz", {})

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def latencies(self, count: int) -> list[float]:
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            self.sock.sendall(self.REQUEST)
            data = b""
            while (response := parse_response(data)) is None:
                chunk = self.sock.recv(65536)
                assert chunk, "the probe connection was closed"
                data += chunk
            samples.append(time.perf_counter() - started)
            assert response.status == 200, response
        return samples

    def close(self) -> None:
        self.sock.close()


# -- slow connections ------------------------------------------------------------


def slow_header_start() -> bytes:
    """A request line and a header, then a header that never ends."""
    return b"GET /healthz HTTP/1.1\r\nHost: confab.test\r\nX-Slow: "


def slow_body_start() -> bytes:
    """Complete headers announcing a body that then comes a byte at a time."""
    return request_head(
        "POST",
        "/api/chat",
        {
            "X-Session-Id": str(uuid.uuid4()),
            "Content-Type": "application/json",
            "Content-Length": "100000",
        },
    )


async def open_slow(port: int, starts: Iterable[bytes], batch: int = 500) -> list[socket.socket]:
    """Open one connection per start (sent at once), `batch` at a time."""
    loop = asyncio.get_running_loop()
    pending = list(starts)
    opened: list[socket.socket] = []

    async def one(start: bytes) -> socket.socket:
        sock = await connect(port)
        if start:
            await loop.sock_sendall(sock, start)
        return sock

    for index in range(0, len(pending), batch):
        opened += await asyncio.gather(*(one(start) for start in pending[index : index + batch]))
    return opened


def trickle(socks: list[socket.socket], byte: bytes = b"a") -> list[socket.socket]:
    """One byte to each socket; the ones the server has closed are returned."""
    closed = []
    for sock in socks:
        try:
            sock.send(byte)
        except BlockingIOError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                raise
            closed.append(sock)
    return closed


async def hold(port: int, headers: int, bodies: int, interval: float) -> None:
    raise_fd_limit()
    # These clients stand for machines elsewhere: on this one, they yield the
    # CPU to the server and the test's own probe whenever both want it.
    os.nice(19)
    slow_headers = await open_slow(port, [slow_header_start()] * headers)
    slow_bodies = await open_slow(port, [slow_body_start() for _ in range(bodies)])
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stdin_closed.set)
    # Spread the bytes out: each connection gets one every `interval` seconds, a
    # slice of them ten times a second. (Waking much more often than that, this
    # process alone would show in the latency of a machine with two cores.)
    everyone = [(sock, b"a") for sock in slow_headers] + [(sock, b" ") for sock in slow_bodies]
    tick = 0.1
    per_tick = max(1, round(len(everyone) * tick / interval))
    position = 0
    while not stdin_closed.is_set():
        for sock, byte in everyone[position : position + per_tick]:
            trickle([sock], byte)
        position = (position + per_tick) % max(1, len(everyone))
        await asyncio.sleep(tick)
    for sock, _ in everyone:
        sock.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["hold"]:
        port, headers, bodies = (int(value) for value in sys.argv[2:5])
        asyncio.run(hold(port, headers, bodies, float(sys.argv[5])))
