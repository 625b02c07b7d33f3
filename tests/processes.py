"""Real server processes for tests: started as the README says, stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "server.py", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 20) -> bool:
        """SIGTERM, then wait; True if it shut down gracefully.

        Uvicorn finishes its shutdown and then re-raises the signal, so a graceful
        stop exits by SIGTERM with "Application shutdown complete" logged.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        graceful_codes = (0, -signal.SIGTERM)
        return self.process.returncode in graceful_codes and (
            "Application shutdown complete" in self.log()
        )

    def kill(self) -> None:
        """SIGKILL: the process dies mid-work, with no chance to clean up."""
        self.process.kill()
        self.process.wait(10)
        self._log.close()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def graphql(self, query: str, **variables: object) -> dict[str, object]:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=10
        )
        body: dict[str, object] = response.json()
        assert "errors" not in body, body
        return body


@contextmanager
def running(env: Mapping[str, str], log_path: Path) -> Iterator[ServerProcess]:
    """A server process with `env`, ready to serve; stopped (SIGTERM) afterwards."""
    process = ServerProcess(env, log_path)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
