"""The benchmark suite: Confab against raw baselines, side by side in one run.

Two server processes (uvicorn, one worker each, sharing PostgreSQL and Redis; the
first mounts the raw baseline endpoints) and this load generator process; the
memory scenario first gets a fresh server process of its own. Each
scenario's workload is described in its module:

- `bench.reads`: snapshot over GraphQL and REST on PostgreSQL and on the embedded
  SQLite default, against a raw endpoint, stock Strawberry, graphql-yoga and Apollo
  Server serving it from memory (bench/peer_servers.py), in interleaved slices
  (bench/slices.py); a long history, a wallet's session list.
- `bench.fanout`: 1,000 subscribers x 100 `tool_update` events vs a raw Starlette
  WebSocket broadcast, and the same with the publisher on the second replica.
- `bench.ack`: chat acknowledgement, GraphQL and REST, 50 concurrent users, on
  PostgreSQL and on SQLite (a third server, embedded default, in-process bus).
- `bench.memory`: resident memory per idle subscriber (10,000 subscribers).
- `bench.interrupt`: a turn streaming on one replica stopped from the other.
- `bench.export`: a 100,000-message session exported in constant memory.
- `bench.search`: full-text search's first page over 100,000 messages, on
  PostgreSQL and SQLite.
- `bench.cluster`: fan-out and cross-replica again on a Redis Cluster the suite
  starts itself (3 masters, 3 replicas), against single Redis in the same run.
- `bench.observability`: snapshot and fan-out with metrics and JSON logs on, against
  both off, in the same run (not in the default set: `--only observability`).

    python -m bench.suite [--seconds 5] [--connections 8] [--subscribers 1000] ...
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Any

from bench import ack, cluster, export, fanout, interrupt, memory, observability, reads, search
from bench.common import LONE_REDIS_URL, server, servers, write_result


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report_reads(result: dict[str, Any]) -> None:
    work = result["workload"]
    print(
        f"\nsnapshot reads: {work['connections']} connections, {work['rounds']} rounds of "
        f"{work['slice_seconds']} s slices, interleaved (median; spread = lowest-highest round)"
    )
    print(
        f"{'side':<18} {'req/s':>8} {'spread':>13} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'cpu ms/req':>10} {'x raw':>5}"
    )
    for name, row in result["sides"].items():
        rounds = row["per_round"]
        print(
            f"{name:<18} {row['requests_per_s']:>8} {min(rounds):>6}-{max(rounds):<6} "
            f"{row['p50_ms']:>7} {row['p99_ms']:>7} {row['cpu_ms_per_request']:>10} "
            f"{row['over_raw']['ratio']:>5}"
        )
    print(f"  (best Node peer: {result['best_node_peer']})")
    for name, row in result["ratios"].items():
        print(
            f"  {name:<30} {row['ratio']} (spread {row['low']}-{row['high']}; "
            f"target >= {row['target']}): " + verdict(row["ratio"] >= row["target"])
        )
    for name, key in (("long history", "long_history"), ("wallet list", "wallet_list")):
        row = result[key]
        print(
            f"{name:<18} {row['requests_per_s']:>8} req/s, p50 {row['p50_ms']} ms, "
            f"p99 {row['p99_ms']} ms (target <= {row['target_p99_ms']} ms): "
            + verdict(row["p99_ms"] <= row["target_p99_ms"])
        )


def report_fanout(result: dict[str, Any]) -> None:
    fan, cross = result["fanout"], result["cross_replica"]
    work = fan["workload"]
    print(
        f"\nfan-out: {work['subscribers']} subscribers x {work['events']} tool_update events "
        f"(burst, then paced {work['interval_ms']} ms apart)"
    )
    print(f"{'':<16} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8}  (burst rate; paced latency)")
    sides = (
        ("raw broadcast", fan["raw"]),
        ("graphql-ws (Node)", fan["graphql_ws_node"]),
        ("graphql", fan["confab"]),
    )
    for name, side in sides:
        paced = side["paced_latency"]
        print(
            f"{name:<18} {side['burst_messages_per_s']:>9} {paced['p50_ms']:>8} "
            f"{paced['p99_ms']:>8}"
        )
    p99 = fan["confab"]["paced_latency"]["p99_ms"]
    print(
        f"  ratio {fan['ratio']} (target >= {fan['target_ratio']}): "
        f"{verdict(fan['ratio'] >= fan['target_ratio'])}; "
        f"p99 {p99} ms (target <= {fan['target_p99_ms']}): {verdict(p99 <= fan['target_p99_ms'])}; "
        f"p99 over raw {fan['p99_over_raw']} (target <= {fan['target_p99_over_raw']}): "
        + verdict(fan["p99_over_raw"] <= fan["target_p99_over_raw"])
    )
    print(
        f"  over graphql-ws on Node {fan['over_graphql_ws']} "
        f"(target >= {fan['target_over_graphql_ws']}): "
        + verdict(fan["over_graphql_ws"] >= fan["target_over_graphql_ws"])
    )
    sustained = fan["sustained"]
    tried = ", ".join(f"{r['events_per_s']}/s p99 {r['p99_ms']} ms" for r in sustained["rates"])
    print(
        f"  sustained rate from the other replica: {sustained['events_per_s']} events/s ({tried})"
    )
    print(
        f"cross-replica: p50 {cross['cross_replica']['p50_ms']} ms vs in-process "
        f"{cross['in_process']['p50_ms']} ms, added {cross['added_p50_ms']} ms "
        f"(target <= {cross['target_added_p50_ms']}): "
        + verdict(cross["added_p50_ms"] <= cross["target_added_p50_ms"])
    )


def report_ack(results: dict[str, Any], params: dict[str, Any]) -> None:
    print(
        f"\nchat acknowledgement: {params['ack_sessions']} concurrent users, "
        f"{params['ack_messages']} messages each, ~{params['ack_think']} s think time"
    )
    for dialect in ("graphql", "rest"):
        for storage in ("postgres", "sqlite"):
            result = results[storage][dialect]
            print(f"  on {storage}:")
            ack.report(result)
            print(
                f"    p99 target <= {ack.TARGET_P99_MS} ms: "
                + verdict(result["p99_ms"] <= ack.TARGET_P99_MS)
            )
        speed = round(
            results["postgres"][dialect]["p50_ms"] / results["sqlite"][dialect]["p50_ms"], 2
        )
        print(
            f"  sqlite speed over postgres ({dialect}, p50): {speed} (target >= 0.9): "
            + verdict(speed >= 0.9)
        )


def report_memory(result: dict[str, Any]) -> None:
    print(
        f"\nmemory: {result['subscribers']} idle subscribers, RSS {result['rss_before_kib']} -> "
        f"{result['rss_after_kib']} KiB: {result['kib_per_subscriber']} KiB each "
        f"(target <= {result['target_kib']}): "
        + verdict(result["kib_per_subscriber"] <= result["target_kib"])
    )


SCENARIOS = ("memory", "reads", "fanout", "ack", "interrupt", "export", "search", "cluster")


async def measure(
    args: argparse.Namespace,
    wanted: set[str],
    first: Any,
    second: Any,
    lone: Any,
    embedded: Any,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "reads" in wanted:
        sizes = {"history": args.history, "wallet_sessions": args.wallet_sessions}
        result["reads"] = await reads.measure(
            first, lone, embedded, args.seconds, args.connections, args.rounds, sizes
        )
    if wanted & {"fanout", "cluster"}:  # the cluster is compared with this run's figures
        result.update(
            await fanout.measure(
                first.url, second.url, first.key, args.subscribers, args.events, args.interval_ms
            )
        )
    if "ack" in wanted:
        result["ack"] = {
            storage: {
                dialect: await ack.measure(
                    target.url,
                    target.key,
                    dialect,
                    args.ack_sessions,
                    args.ack_messages,
                    args.ack_think,
                )
                for dialect in ("graphql", "rest")
            }
            for storage, target in (("postgres", first), ("sqlite", embedded))
        }
    if "interrupt" in wanted:
        result["interrupt"] = await interrupt.measure(
            first.url, second.url, first.key, args.interrupt_sessions
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3, help="one slice of a read side")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of reads")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--wallet-sessions", type=int, default=1_000)
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--interval-ms", type=float, default=50)
    parser.add_argument("--ack-sessions", type=int, default=50)
    parser.add_argument("--ack-messages", type=int, default=6)
    parser.add_argument("--ack-think", type=float, default=2.0)
    parser.add_argument("--idle-subscribers", type=int, default=10_000)
    parser.add_argument("--interrupt-sessions", type=int, default=20)
    parser.add_argument("--search-messages", type=int, default=100_000)
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    args = parser.parse_args()
    started = time.monotonic()
    wanted = set(args.only.split(","))
    result: dict[str, Any] = {}
    if "memory" in wanted:
        # A process of its own, fresh, and gone before the rest: when 10,000
        # connections close at once, collecting what they leave takes the
        # collector about two seconds, which would land in the next scenario.
        # More connections than the default cap (10,000) allows: the subscribers,
        # the probe and the publisher.
        room = str(args.idle_subscribers + 1_000)
        with server({"CONFAB_BENCH_BASELINES": "true", "CONFAB_MAX_CONNECTIONS": room}) as alone:
            result["memory"] = asyncio.run(memory.measure(alone, args.idle_subscribers))
    if "export" in wanted:
        with server({"CONFAB_LOG_LEVEL": "warning"}) as exporting:
            result["export"] = asyncio.run(export.measure(exporting, [10_000, 100_000]))
    if "search" in wanted:
        result["search"] = search.measure(args.search_messages, args.seconds)
    if wanted - {"memory", "observability", "export", "search"}:
        sqlite = {
            "CONFAB_BENCH_BASELINES": "true",
            "DATABASE_URL": f"sqlite://{tempfile.mkdtemp()}/bench.sqlite3",
            "CONFAB_EVENT_BUS": "memory://",
        }
        baselines = {"CONFAB_BENCH_BASELINES": "true"}
        with (
            servers(baselines, 2) as (first, second),
            server({**baselines, "CONFAB_EVENT_BUS": LONE_REDIS_URL}) as lone,
            server(sqlite) as embedded,
        ):
            result.update(asyncio.run(measure(args, wanted, first, second, lone, embedded)))
    if "observability" in wanted:
        result["observability"] = observability.measure(args)
    if "cluster" in wanted:
        on_cluster = cluster.measure(args)
        result["cluster"] = {**on_cluster, "compared": cluster.compare(on_cluster, result)}
    print(
        f"suite: PostgreSQL + Redis, one uvicorn worker per replica; "
        f"reads: {args.connections} connections, {args.rounds} x {args.seconds} s slices per side"
    )
    if "memory" in result:
        report_memory(result["memory"])
    if "reads" in result:
        report_reads(result["reads"])
    if "fanout" in result:
        report_fanout(result)
    if "ack" in result:
        report_ack(result["ack"], vars(args))
    if "interrupt" in result:
        interrupt.report(result["interrupt"], verdict)
    if "export" in result:
        export.report(result["export"], verdict)
    if "search" in result:
        search.report(result["search"], verdict)
    if "observability" in result:
        observability.report(result["observability"], verdict)
    if "cluster" in result:
        cluster.report(result["cluster"]["compared"], verdict)
        interrupt.report(result["cluster"]["interrupt"], verdict, " on the cluster")
    elapsed = round(time.monotonic() - started)
    path = write_result("suite", {"params": vars(args), "seconds": elapsed, **result})
    print(f"\n{elapsed} s in all; written to {path}")


if __name__ == "__main__":
    main()
