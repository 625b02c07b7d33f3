"""The benchmark harness runs end to end at tiny sizes (no thresholds), so it
cannot rot between performance runs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.processes import ROOT

pytestmark = [pytest.mark.usefixtures("postgres_url", "redis_url"), pytest.mark.processes]


def run_bench(module: str, *args: str) -> tuple[str, dict[str, Any]]:
    """Run `python -m bench.<module> args`; its output and the JSON it wrote."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(
        (ROOT / "bench" / "results" / f"{module}.json").read_text()
    )
    return result.stdout, figures


def test_ack_benchmark_runs() -> None:
    output, figures = run_bench("ack", "--sessions", "3", "--messages", "2", "--think", "0.05")
    assert "sendMessage" in output
    assert "POST /api/chat" in output
    for dialect in ("graphql", "rest"):
        assert figures[dialect]["count"] == 6
        assert figures[dialect]["p99_ms"] > 0
        assert figures[dialect]["healthz_floor"]["count"] == 6


def test_janitor_benchmark_runs() -> None:
    _, figures = run_bench("janitor", "--sessions", "300", "--seconds", "0.5")
    assert figures["expired_sessions"] == 300
    assert figures["baseline"]["count"] > 0
    assert figures["during_sweep"]["count"] > 0


def test_search_benchmark_runs() -> None:
    output, figures = run_bench("search", "--messages", "1000", "--seconds", "0.2")
    assert figures["messages"] == 1000
    for storage in ("postgres", "sqlite"):
        assert {label.split(" (")[0] for label in figures[storage]} >= {"common", "rare", "phrase"}
        assert all(each["requests"] > 0 for each in figures[storage].values())
    assert "first page of 20" in output


@pytest.mark.timeout(400)  # every scenario, its peers and servers started in turn
def test_benchmark_suite_runs() -> None:
    output, figures = run_bench(
        "suite",
        *("--seconds", "0.3", "--rounds", "1", "--connections", "2", "--history", "50"),
        *("--wallet-sessions", "20", "--subscribers", "20", "--events", "5"),
        *("--interval-ms", "5", "--ack-sessions", "2", "--ack-messages", "1"),
        *("--ack-think", "0.05", "--idle-subscribers", "50", "--interrupt-sessions", "2"),
        *("--search-messages", "1000"),
    )
    for scenario in (
        "snapshot reads",
        "confab graphql",
        "confab rest state",
        "sqlite graphql",
        "strawberry",
        "yoga",
        "apollo",
        "graphql_over_best_node",
        "long history",
        "wallet list",
        "fan-out",
        "raw broadcast",
        "graphql-ws (Node)",
        "sustained rate",
        "cross-replica",
        "sendMessage",
        "POST /api/chat",
        "idle subscribers",
        "interrupt across replicas:",
        "search, first page of 20, 1,000 messages",
        "interrupt across replicas on the cluster:",
        "Redis Cluster (3 masters + 3 replicas) vs single Redis",
    ):
        assert scenario in output
    reads = figures["reads"]
    for side in ("confab graphql", "confab rest state", "sqlite graphql", "raw", "apollo"):
        assert reads["sides"][side]["requests_per_s"] > 0, side
        assert reads["sides"][side]["cpu_ms_per_request"] > 0, side
    for ratio in reads["ratios"].values():
        assert ratio["low"] <= ratio["ratio"] <= ratio["high"]
    assert reads["long_history"]["requests"] > 0
    assert figures["fanout"]["confab"]["paced_latency"]["count"] == 2 * 20 * 5
    assert figures["fanout"]["ratio"] > 0
    assert figures["fanout"]["over_graphql_ws"] > 0
    assert figures["fanout"]["sustained"]["rates"]
    assert figures["cross_replica"]["cross_replica"]["count"] == 2 * 20 * 5
    assert figures["ack"]["postgres"]["rest"]["count"] == 2
    assert figures["ack"]["sqlite"]["graphql"]["count"] == 2
    assert figures["memory"]["subscribers"] == 50
    assert figures["interrupt"]["stop"]["count"] == 2
    on_cluster = figures["cluster"]
    assert on_cluster["interrupt"]["stop"]["count"] == 2
    assert on_cluster["cross_replica"]["cross_replica"]["count"] == 2 * 20 * 5
    assert on_cluster["compared"]["cross_replica"]["p99_ratio"] > 0
