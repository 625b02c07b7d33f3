"""The benchmark harness runs end to end at tiny sizes (no thresholds), so it
cannot rot between performance runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.processes import ROOT


@pytest.mark.usefixtures("postgres_url", "redis_url")
def test_ack_benchmark_runs() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ack",
            "--sessions",
            "3",
            "--messages",
            "2",
            "--think",
            "0.05",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "p99" in result.stdout
    figures = json.loads((ROOT / "bench" / "results" / "ack.json").read_text())
    assert figures["count"] == 6
    assert figures["p99_ms"] > 0
    assert figures["healthz_floor"]["count"] == 6


@pytest.mark.usefixtures("postgres_url", "redis_url")
def test_janitor_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.janitor", "--sessions", "300", "--seconds", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads((ROOT / "bench" / "results" / "janitor.json").read_text())
    assert figures["expired_sessions"] == 300
    assert figures["baseline"]["count"] > 0
    assert figures["during_sweep"]["count"] > 0


@pytest.mark.usefixtures("postgres_url", "redis_url")
def test_benchmark_suite_runs() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.suite",
            "--seconds",
            "0.3",
            "--connections",
            "2",
            "--history",
            "50",
            "--wallet-sessions",
            "20",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for scenario in ("raw snapshot", "snapshot", "rest state", "long history", "wallet list"):
        assert scenario in result.stdout
    figures = json.loads((ROOT / "bench" / "results" / "suite.json").read_text())
    assert figures["snapshot"]["ratio"] > 0
    assert figures["rest_state"]["ratio"] > 0
    assert figures["long_history"]["requests"] > 0
