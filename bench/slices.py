"""Side-by-side measurement in interleaved slices: every side runs for a short
slice in turn, round after round, so a machine that drifts (another process, a
slow minute) lands on every side alike. Each round's ratios are taken within the
round; the median and the spread (lowest and highest round) are reported, with
the server's CPU time per request read from /proc beside the throughput."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import Request, run

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Side:
    name: str
    url: str  # scheme, host and port
    request: Request
    pid: int  # the serving process, for its CPU time


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def interleaved(
    sides: list[Side], rounds: int, seconds: float, connections: int
) -> dict[str, dict[str, Any]]:
    """Each side's median throughput, latency and CPU per request over `rounds`
    rounds of one `seconds` slice each, and its per-round throughputs."""
    for side in sides:  # warm caches, pools and JITs
        await run(side.url, side.request, connections, min(1.0, seconds))
    slices: dict[str, list[dict[str, float]]] = {side.name: [] for side in sides}
    for _ in range(rounds):
        for side in sides:
            before = cpu_seconds(side.pid)
            result = await run(side.url, side.request, connections, seconds)
            used = cpu_seconds(side.pid) - before
            result["cpu_ms_per_request"] = round(used * 1000 / max(1, result["requests"]), 3)
            slices[side.name].append(result)
    summary: dict[str, dict[str, Any]] = {}
    for name, results in slices.items():
        summary[name] = {
            "requests_per_s": round(statistics.median(r["requests_per_s"] for r in results), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 3),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 3),
            "cpu_ms_per_request": round(
                statistics.median(r["cpu_ms_per_request"] for r in results), 3
            ),
            "per_round": [r["requests_per_s"] for r in results],
        }
    return summary


def ratio(summary: dict[str, dict[str, Any]], side: str, over: str) -> dict[str, float]:
    """`side` over `over`, round by round: the median and the spread."""
    rounds = [
        a / b
        for a, b in zip(summary[side]["per_round"], summary[over]["per_round"], strict=True)
        if b
    ]
    return {
        "ratio": round(statistics.median(rounds), 2),
        "low": round(min(rounds), 2),
        "high": round(max(rounds), 2),
    }
