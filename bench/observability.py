"""The cost of observability: the snapshot and fan-out scenarios on replicas with
metrics and JSON logs on (`CONFAB_METRICS=on`, `CONFAB_LOG_FORMAT=json`, level
`info`: one access line per request), against the same on replicas with both off
(`CONFAB_METRICS=off`, text logs at `warning`), in the same suite run. Each
variant's ratios are against the raw baselines served by the same processes (whose
requests pass the same middleware), so what is compared is Confab's own overhead.
Target: the snapshot and fan-out ratios with observability on stay within 5% of
those without.

The variants run in the order off, on, on, off and each variant's ratios are the
mean of its two runs: a machine that warms up (or gets busier) during the run
favours neither side.

    python -m bench.suite --only observability
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench import fanout, reads
from bench.common import servers

TARGET_CHANGE = 0.05
ORDER = ("off", "on", "on", "off")
VARIANTS = {
    "off": {"CONFAB_METRICS": "off", "CONFAB_LOG_FORMAT": "text", "CONFAB_LOG_LEVEL": "warning"},
    "on": {"CONFAB_METRICS": "on", "CONFAB_LOG_FORMAT": "json", "CONFAB_LOG_LEVEL": "info"},
}


async def _one(args: argparse.Namespace, first: Any, second: Any) -> dict[str, Any]:
    read = await reads.snapshot_over_raw(first, args.seconds, args.connections, args.rounds)
    fan = await fanout.measure(
        first.url, second.url, first.key, args.subscribers, args.events, args.interval_ms
    )
    fan_raw, fan_confab = fan["fanout"]["raw"], fan["fanout"]["confab"]
    return {
        "snapshot_ratio": read["ratio"],
        "snapshot_requests_per_s": read["graphql_requests_per_s"],
        "raw_snapshot_requests_per_s": read["raw_requests_per_s"],
        "fanout_ratio": fan_confab["burst_messages_per_s"] / fan_raw["burst_messages_per_s"],
        "fanout_messages_per_s": fan_confab["burst_messages_per_s"],
        "fanout_p99_ms": fan_confab["paced_latency"]["p99_ms"],
    }


def _mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: sum(run[key] for run in runs) / len(runs) for key in runs[0]}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for name in ORDER:
        env = VARIANTS[name]
        with servers({"CONFAB_BENCH_BASELINES": "true", **env}, 2) as (first, second):
            runs[name].append(asyncio.run(_one(args, first, second)))
    off, on = _mean(runs["off"]), _mean(runs["on"])
    change = {key: round(on[key] / off[key] - 1, 4) for key in ("snapshot_ratio", "fanout_ratio")}
    return {"off": off, "on": on, "change": change, "target_change": TARGET_CHANGE}


def report(result: dict[str, Any], verdict: Any) -> None:
    print("\nobservability: metrics + JSON logs (info) on vs off, same run")
    print(f"{'':<16} {'off':>9} {'on':>9} {'change':>8}")
    for label, key in (("snapshot ratio", "snapshot_ratio"), ("fan-out ratio", "fanout_ratio")):
        change = result["change"][key]
        print(
            f"{label:<16} {result['off'][key]:>9.3f} {result['on'][key]:>9.3f} {change:>+8.1%}"
            f"  (target within {result['target_change']:.0%}): "
            + verdict(change >= -result["target_change"])
        )
