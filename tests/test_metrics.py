"""Prometheus metrics, scraped from a real server process after known traffic.

The shared server (PostgreSQL, Redis, the test apps) serves `/metrics` on its own
port by default; other servers here serve it on a port of their own, or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import new_id
from tests.live import Collector, wait_for_subscribers, ws_session
from tests.processes import ServerProcess, free_port, running
from tests.rest_client import chat, ok, until_idle

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

EVENTS = "subscription($id: ID!) { sessionEvents(sessionId: $id) { cursor type } }"


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for_value(
    url: str, name: str, expected: float, timeout: float = 10, **labels: str
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        current = value(scrape(url), name, **labels)
        if current == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} is {current}, expected {expected}")
        time.sleep(0.05)


async def test_counts_after_known_traffic(server: ServerProcess, http: httpx.AsyncClient) -> None:
    before = scrape(server.url)
    sessions = [new_id() for _ in range(3)]
    messages = ['/tool calculator {"expression": "2+3"}', "hello there", "one more question"]
    for session_id, message in zip(sessions, messages, strict=True):
        ok(await chat(http, session_id, message))
    for session_id in sessions:
        await until_idle(http, session_id)
    query = "query MetricsProbe { apps { name } }"
    ok(await http.post("/graphql", json={"query": query, "operationName": "MetricsProbe"}))
    bad = "query MetricsBroken { nope }"
    await http.post("/graphql", json={"query": bad, "operationName": "MetricsBroken"})

    after = scrape(server.url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    chat_200 = {"route": "/api/chat", "method": "POST", "status": "200"}
    assert grew("confab_http_requests_total", **chat_200) == 3
    histogram = {"route": "/api/chat", "method": "POST"}
    assert grew("confab_http_request_duration_seconds_count", **histogram) == 3
    assert grew("confab_turns_finished_total", outcome="done") == 3
    assert grew("confab_tool_runs_total", tool="calculator", outcome="ok") == 1
    assert grew("confab_tool_run_duration_seconds_count", tool="calculator") == 1
    # The tool round makes two model calls; the other two turns one each.
    model = {"backend": "builtin", "outcome": "ok"}
    assert grew("confab_model_call_duration_seconds_count", **model) == 4
    assert grew("confab_graphql_operations_total", operation="MetricsProbe", type="query") == 1
    assert grew("confab_graphql_operations_total", operation="MetricsBroken", type="query") == 1
    assert grew("confab_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED") >= 1
    assert grew("confab_events_published_total") > 0
    assert grew("confab_events_delivered_total") >= 0
    assert value(after, "confab_turns_running") == 0
    assert value(after, "confab_turns_queued") == 0
    # PostgreSQL: the pool's connections, in use and idle, and its limit.
    assert value(after, "confab_db_pool_max_connections") >= 1
    assert ("confab_db_pool_connections", frozenset({("state", "idle")})) in after
    assert ("confab_events_outbox_depth", frozenset()) in after
    assert ("confab_janitor_sweeps_total", frozenset()) in after
    # Never a session id or a raw path as a label value.
    labels = {v for _, pairs in after for _, v in pairs}
    assert not any(session_id in label for session_id in sessions for label in labels)
    assert not any(label.startswith("/api/") and "?" in label for label in labels)


async def test_route_templates_and_unmatched_paths(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        for _ in range(2):
            await http.get(f"/api/sessions/{new_id()}")
        await http.get(f"/no/such/{new_id()}")
    after = scrape(server.url)
    routes = {dict(pairs).get("route") for name, pairs in after if name.startswith("confab_http")}
    assert "/api/sessions/{session_id}" in routes, routes
    assert "unmatched" in routes
    assert not any(route and "no/such" in route for route in routes)


async def test_websocket_subscription_gauges(server: ServerProcess) -> None:
    wait_for_value(server.url, "confab_open_connections", 0, transport="websocket")
    session_id = new_id()
    async with ws_session(server) as session:
        collector = Collector(session, EVENTS, id=session_id)
        await wait_for_subscribers(server, 1)
        samples = scrape(server.url)
        assert value(samples, "confab_open_connections", transport="websocket") == 1
        assert value(samples, "confab_graphql_subscriptions") == 1
        assert value(samples, "confab_event_subscribers") >= 1
        await collector.stop()
    wait_for_value(server.url, "confab_graphql_subscriptions", 0)
    wait_for_value(server.url, "confab_open_connections", 0, transport="websocket")


@pytest.fixture
def own_server(
    live_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    with running({**live_env, **request.param}, tmp_path / "server.log") as process:
        yield process


METRICS_PORT = free_port()


@pytest.mark.parametrize("own_server", [{"CONFAB_METRICS": f"port:{METRICS_PORT}"}], indirect=True)
def test_metrics_on_their_own_port(own_server: ServerProcess) -> None:
    assert httpx.get(f"{own_server.url}/metrics", timeout=5).status_code == 404
    samples = scrape(f"http://127.0.0.1:{METRICS_PORT}")
    # The readiness polls that started the server, counted on the main port.
    ready = {"route": "/readyz", "method": "GET", "status": "200"}
    assert value(samples, "confab_http_requests_total", **ready) >= 1
    assert value(samples, "confab_db_pool_max_connections") >= 1
    other = httpx.get(f"http://127.0.0.1:{METRICS_PORT}/other", timeout=5)
    assert other.status_code == 404


@pytest.mark.parametrize("own_server", [{"CONFAB_METRICS": "off"}], indirect=True)
def test_metrics_off(own_server: ServerProcess) -> None:
    response = httpx.get(f"{own_server.url}/metrics", timeout=5)
    assert response.status_code == 404
    assert "x-request-id" in response.headers  # request ids stay on


def test_bad_metrics_setting_is_one_line(live_env: dict[str, str]) -> None:
    from tests.live import run_cli

    result = run_cli({**live_env, "CONFAB_METRICS": "sometimes"}, "check-config")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "CONFAB_METRICS" in result.stderr
