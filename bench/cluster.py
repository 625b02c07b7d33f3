"""The fan-out and cross-replica scenarios again, with a Redis Cluster as the event bus.

The benchmark starts its own loopback cluster the way the tests do
(tests/owned_redis_cluster.py: 3 masters, 3 replicas, nothing on disk) and two
Confab replicas on it (same PostgreSQL as the rest of the suite), then runs
`bench.fanout` unchanged: subscribers on the first replica, events published by
it and by the second; then `bench.interrupt` (a turn on the first replica stopped
from the second, through the cluster). Over the cluster an event goes publisher replica -> the
master of the session's slot (the publish script's `SPUBLISH`) -> that master's
shard listener in the subscribers' replica. The figure to compare is the
cross-replica publish-to-receive p99 against single Redis measured in the same
run (target: at most 2x).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from bench import fanout, interrupt
from bench.common import servers
from tests.owned_redis_cluster import OwnedRedisCluster

TARGET_P99_RATIO = 2.0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    cluster = OwnedRedisCluster(Path(tempfile.mkdtemp(prefix="confab-bench-cluster-")))
    cluster.start()
    try:
        env = {"CONFAB_BENCH_BASELINES": "true", "CONFAB_EVENT_BUS": cluster.url}
        with servers(env, 2) as (first, second):
            result = asyncio.run(
                fanout.measure(
                    first.url,
                    second.url,
                    first.key,
                    args.subscribers,
                    args.events,
                    args.interval_ms,
                )
            )
            result["interrupt"] = asyncio.run(
                interrupt.measure(first.url, second.url, first.key, args.interrupt_sessions)
            )
    finally:
        cluster.stop()
    return {"nodes": len(cluster.nodes), **result}


def compare(cluster: dict[str, Any], single: dict[str, Any]) -> dict[str, Any]:
    """Cluster vs single Redis, p99 of what both runs measured."""
    rows: dict[str, Any] = {}
    for name, path in (
        ("fanout_paced", ("fanout", "confab", "paced_latency")),
        ("cross_replica", ("cross_replica", "cross_replica")),
    ):
        on_cluster, on_single = cluster, single
        for key in path:
            on_cluster, on_single = on_cluster[key], on_single[key]
        rows[name] = {
            "cluster_p50_ms": on_cluster["p50_ms"],
            "cluster_p99_ms": on_cluster["p99_ms"],
            "single_p50_ms": on_single["p50_ms"],
            "single_p99_ms": on_single["p99_ms"],
            "p99_ratio": round(on_cluster["p99_ms"] / max(on_single["p99_ms"], 0.001), 2),
        }
    rows["target_p99_ratio"] = TARGET_P99_RATIO
    return rows


def report(comparison: dict[str, Any], verdict: Any) -> None:
    print("\nRedis Cluster (3 masters + 3 replicas) vs single Redis, same run:")
    print(f"{'':<22} {'cluster p50':>11} {'p99 ms':>8} {'single p50':>11} {'p99 ms':>8}  ratio")
    for name, label in (
        ("fanout_paced", "fan-out (paced)"),
        ("cross_replica", "cross-shard replica"),
    ):
        row = comparison[name]
        print(
            f"{label:<22} {row['cluster_p50_ms']:>11} {row['cluster_p99_ms']:>8} "
            f"{row['single_p50_ms']:>11} {row['single_p99_ms']:>8}  {row['p99_ratio']}"
            + (
                f" (target <= {comparison['target_p99_ratio']}): "
                + verdict(row["p99_ratio"] <= comparison["target_p99_ratio"])
                if name == "cross_replica"
                else ""
            )
        )
