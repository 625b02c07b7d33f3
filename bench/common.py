"""Benchmark plumbing: a real server process, percentiles, result files.

The server runs as its own process (uvicorn, one worker) against PostgreSQL and
Redis; the script that imports this is the load generator, in another process.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confab_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
# A replica alone on its Redis (the reads' "lone" sides); the same database.
LONE_REDIS_URL = os.environ.get("BENCH_LONE_REDIS_URL", "redis://127.0.0.1:6379/3")

BENCH_APPS = """
[apps.bench]
display_name = "Bench"
queue_limit = 100000
memory = true
[apps.bench.model]
chunk_delay = 0
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class BenchServer:
    url: str
    key: str  # for the `bench` app: no queue bound, no streaming delay
    pid: int

    def rss_kib(self) -> int:
        """The server process's resident memory."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")


@contextmanager
def server(extra_env: Mapping[str, str] | None = None) -> Iterator[BenchServer]:
    """A Confab server process on PostgreSQL and Redis (uvicorn, one worker)."""
    with servers(extra_env, 1) as started:
        yield started[0]


@contextmanager
def servers(extra_env: Mapping[str, str] | None, count: int) -> Iterator[list[BenchServer]]:
    """`count` replicas sharing one database and one Redis."""
    config = Path(tempfile.mkdtemp()) / "bench-apps.toml"
    config.write_text(BENCH_APPS)
    env = {
        **os.environ,
        "DATABASE_URL": PG_URL,
        "CONFAB_EVENT_BUS": REDIS_URL,
        "CONFAB_CONFIG": str(config),
        "CONFAB_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    subprocess.run(
        [sys.executable, "server.py", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    key = subprocess.run(
        [sys.executable, "server.py", "keys", "create", "--app", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    processes: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for _ in range(count):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "server.py", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append((process, f"http://127.0.0.1:{port}"))
        for _, url in processes:
            _wait_ready(url)
        yield [BenchServer(url, key, process.pid) for process, url in processes]
    finally:
        for process, _ in processes:
            process.send_signal(signal.SIGTERM)
        for process, _ in processes:
            process.wait(30)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "count": len(ordered),
        "p50_ms": round(cuts[49], 3),
        "p90_ms": round(cuts[89], 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(ordered[-1], 3),
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n")
    return path
