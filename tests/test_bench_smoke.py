"""The benchmark harness runs end to end at tiny sizes (no thresholds), so it
cannot rot between performance runs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.usefixtures("postgres_url", "redis_url")


def run_bench(module: str, *args: str) -> tuple[str, dict[str, Any]]:
    """Run `python -m bench.<module> args`; its output and the JSON it wrote."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures: dict[str, Any] = json.loads(
        (ROOT / "bench" / "results" / f"{module}.json").read_text()
    )
    return result.stdout, figures


def test_ack_benchmark_runs() -> None:
    output, figures = run_bench("ack", "--sessions", "3", "--messages", "2", "--think", "0.05")
    assert "p99" in output
    assert figures["count"] == 6
    assert figures["p99_ms"] > 0
    assert figures["healthz_floor"]["count"] == 6


def test_janitor_benchmark_runs() -> None:
    _, figures = run_bench("janitor", "--sessions", "300", "--seconds", "0.5")
    assert figures["expired_sessions"] == 300
    assert figures["baseline"]["count"] > 0
    assert figures["during_sweep"]["count"] > 0


def test_benchmark_suite_runs() -> None:
    output, figures = run_bench(
        "suite",
        "--seconds",
        "0.3",
        "--connections",
        "2",
        "--history",
        "50",
        "--wallet-sessions",
        "20",
    )
    for scenario in ("raw snapshot", "snapshot", "rest state", "long history", "wallet list"):
        assert scenario in output
    assert figures["snapshot"]["ratio"] > 0
    assert figures["rest_state"]["ratio"] > 0
    assert figures["long_history"]["requests"] > 0
