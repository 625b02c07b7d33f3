"""The servers users would pick instead of Confab, serving the same session
snapshot from memory, for `bench.reads` to measure side by side:

- `raw`: a Starlette endpoint returning the snapshot as JSON (the ceiling);
- `strawberry`: stock Strawberry (`strawberry.asgi.GraphQL`), the same GraphQL
  query;
- `yoga`, `apollo`: graphql-yoga and Apollo Server on Node (bench/node/peer.mjs),
  installed on first use with `npm ci` from bench/node/package-lock.json;
- `fanout_peer`: graphql-ws on Node broadcasting `toolUpdate` events
  (bench/node/fanout-peer.mjs), for bench.fanout.

Each runs as its own process on uvicorn (httptools, uvloop: as Confab's server) or
Node:

    python -m bench.peer_servers raw|strawberry PORT SNAPSHOT.json
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, free_port

NODE_DIR = ROOT / "bench" / "node"
PYTHON_PEERS = ("raw", "strawberry")
NODE_PEERS = ("yoga", "apollo")


@dataclass(frozen=True)
class Peer:
    name: str
    url: str  # scheme, host and port
    path: str  # where the snapshot is served
    pid: int


def _raw_app(snapshot: dict[str, Any]) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def serve(_: Any) -> JSONResponse:
        return JSONResponse(snapshot)

    return Starlette(routes=[Route("/snapshot", serve)])


def _strawberry_app(snapshot: dict[str, Any]) -> Any:
    import strawberry
    from strawberry.asgi import GraphQL

    from bench import peer_strawberry

    peer_strawberry.load(snapshot)
    return GraphQL(strawberry.Schema(query=peer_strawberry.Query), graphql_ide=None)


def _node_modules() -> Path:
    modules = NODE_DIR / "node_modules"
    if not modules.is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("the Node peers need npm (and Node) on PATH")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=600,
        )
    return modules


@contextmanager
def fanout_peer() -> Iterator[Peer]:
    """graphql-ws on Node with the same `toolUpdate` subscription and a broadcast
    trigger (bench/node/fanout-peer.mjs), for bench.fanout."""
    _node_modules()
    port = free_port()
    node = shutil.which("node") or "node"
    command = [node, str(NODE_DIR / "fanout-peer.mjs"), str(port)]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_listening(f"http://127.0.0.1:{port}/readyz", process)
        yield Peer("graphql-ws", f"http://127.0.0.1:{port}", "/graphql", process.pid)
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def peer(name: str, snapshot_file: Path) -> Iterator[Peer]:
    """One peer process, ready, stopped afterwards."""
    port = free_port()
    if name in NODE_PEERS:
        _node_modules()
        node = shutil.which("node") or "node"
        command = [node, str(NODE_DIR / "peer.mjs"), name, str(port), str(snapshot_file)]
        path = "/graphql" if name == "yoga" else "/"
    else:
        command = [sys.executable, "-m", "bench.peer_servers", name, str(port), str(snapshot_file)]
        path = "/snapshot" if name == "raw" else "/graphql"
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_listening(f"http://127.0.0.1:{port}", process)
        yield Peer(name, f"http://127.0.0.1:{port}", path, process.pid)
    finally:
        process.terminate()
        process.wait(30)


def _wait_listening(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"peer {process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"peer at {url} did not start")


def main() -> None:
    import uvicorn

    name, port, snapshot_file = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    snapshot = json.loads(snapshot_file.read_text())
    app = _raw_app(snapshot) if name == "raw" else _strawberry_app(snapshot)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
