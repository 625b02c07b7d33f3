"""A loopback Redis Cluster owned by one test module (or one benchmark run).

Six `redis-server` processes on free ports, each in a directory of its own, with
nothing on disk (`--save ""`, no append-only file): three masters with one replica
each, `cluster-require-full-coverage no` (a dead master's slots stop, the rest go
on) and a short node timeout, so a killed master is replaced within a few seconds.
Only the processes started here are ever stopped, by their pid.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis

SLOTS = 16_384
NODE_TIMEOUT_MS = 1_000


def _free_port() -> int:
    # Cluster nodes also listen on port + 10000 (the cluster bus): both must be free.
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10_000 >= 65_536:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port


@dataclass
class Node:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=1)


@dataclass
class OwnedRedisCluster:
    directory: Path
    masters: int = 3
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Confab's cluster URL: every node as a seed."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes) + "/"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        for n in range(self.masters * 2):
            directory = self.directory / f"node{n}"
            directory.mkdir(parents=True, exist_ok=True)
            node = Node(_free_port(), directory)
            node.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(node.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(directory),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(NODE_TIMEOUT_MS),
                    "--cluster-require-full-coverage",
                    "no",
                    "--cluster-allow-replica-migration",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.nodes.append(node)
        try:
            for node in self.nodes:
                _wait(partial(_pings, node), f"node {node.port} did not start")
            self._form()
        except BaseException:
            self.stop()
            raise

    def _form(self) -> None:
        masters, replicas = self.nodes[: self.masters], self.nodes[self.masters :]
        first = masters[0].client()
        for node in self.nodes[1:]:
            command(first, "CLUSTER", "MEET", "127.0.0.1", node.port)
        per_master = SLOTS // self.masters
        for n, node in enumerate(masters):
            low = n * per_master
            high = SLOTS - 1 if n == self.masters - 1 else low + per_master - 1
            command(node.client(), "CLUSTER", "ADDSLOTSRANGE", low, high)
        _wait(lambda: len(_known(first)) == len(self.nodes), "nodes did not meet")
        for master, replica in zip(masters, replicas, strict=True):
            master_id = node_id(master.client())
            replica_client = replica.client()
            _wait(partial(_knows, replica_client, master_id), "replica never learned its master")
            command(replica_client, "CLUSTER", "REPLICATE", master_id)
        self.wait_healthy()
        first.close()

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every slot served, every live node agreeing, every replica in sync."""

        def healthy() -> bool:
            for node in self.live_nodes():
                client = node.client()
                try:
                    info = command(client, "CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if "cluster_state:ok" not in text:
                        return False
                    role = client.info("replication")
                    if role["role"] == "slave" and role.get("master_link_status") != "up":
                        return False
                finally:
                    client.close()
            return True

        _wait(healthy, "the cluster did not become healthy", timeout)

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def master_of_slot(self, slot: int) -> Node:
        for node in self.live_nodes():
            client = node.client()
            try:
                for low, high, master, *_ in command(client, "CLUSTER", "SLOTS"):
                    if low <= slot <= high:
                        port = int(master[1])
                        return next(n for n in self.nodes if n.port == port)
            except redis.RedisError:
                continue
            finally:
                client.close()
        raise LookupError(f"no master serves slot {slot}")

    def masters_now(self) -> list[Node]:
        found: list[Node] = []
        for node in self.live_nodes():
            client = node.client()
            try:
                if client.info("replication")["role"] == "master":
                    found.append(node)
            finally:
                client.close()
        return found

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies with no chance to tell anyone."""
        if node.process is not None:
            node.process.kill()
            node.process.wait(10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(10)
                node.process = None


def command(client: redis.Redis, *args: Any) -> Any:
    """One command, as typed as redis-py lets it be."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def node_id(client: redis.Redis) -> str:
    raw = command(client, "CLUSTER", "MYID")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def migrate_slot(cluster: OwnedRedisCluster, slot: int, target: Node) -> None:
    """Move one slot, keys and all, the way `redis-cli --cluster reshard` does."""
    source = cluster.master_of_slot(slot)
    src, dst = source.client(), target.client()
    try:
        source_id, target_id = node_id(src), node_id(dst)
        command(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        command(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while True:
            keys = command(src, "CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            command(src, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        for client in (dst, src):
            command(client, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for node in cluster.live_nodes():
            if node not in (source, target):
                other = node.client()
                try:
                    command(other, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
                except redis.ResponseError:
                    pass  # a replica refuses; it learns from its master
                finally:
                    other.close()
    finally:
        src.close()
        dst.close()


def _pings(node: Node) -> bool:
    client = node.client()
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _known(client: redis.Redis) -> list[str]:
    raw = command(client, "CLUSTER", "NODES")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return [line for line in text.splitlines() if line.strip()]


def _knows(client: redis.Redis, other_id: str) -> bool:
    return any(line.startswith(other_id) for line in _known(client))


def _wait(condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise TimeoutError(message)
