"""Prometheus metrics: one `Metrics` per application, on its own `CollectorRegistry`
(several apps in one process, as in tests, never share a counter).

Two kinds:

- instruments updated where things happen (HTTP requests, GraphQL operations,
  turns, model calls, tools), with label children resolved once and cached;
- values read at scrape time from what the runtime already counts (the event bus's
  `stats`, subscribers and outbox, the turn queue, the database pool, the
  janitor, the session cache), by `RuntimeCollector`: nothing on the hot path.

Label sets are bounded: routes are templates, methods and codes come from short
lists, operation names are capped (`BoundedNames`), and no label ever holds a
session id or a key. docs/observability.md lists every metric.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from runtime.core import Runtime

logger = logging.getLogger(__name__)

# `*_created` series (a timestamp per counter child) double what a scrape carries
# and Prometheus does not need them.
disable_created_metrics()  # type: ignore[no-untyped-call]

OTHER = "other"
# Latency buckets (seconds): requests are milliseconds, model calls seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MODEL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TOOL_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class BoundedNames:
    """The first `limit` distinct names as themselves, every later one as "other":
    a client choosing operation names cannot grow the label set without bound."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def __call__(self, name: str) -> str:
        if name in self._known:
            return name
        if len(self._known) >= self._limit or len(name) > 100:
            return OTHER
        self._known.add(name)
        return name


class Metrics:
    def __init__(self, operation_names: int = 100) -> None:
        registry = CollectorRegistry()
        self.registry = registry
        self.http_requests = Counter(
            "confab_http_requests",
            "HTTP requests answered, by route template, method and status",
            ("route", "method", "status"),
            registry=registry,
        )
        self.http_duration = Histogram(
            "confab_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route and method "
            "(long-lived streams are counted when they end)",
            ("route", "method"),
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.open_connections = Gauge(
            "confab_open_connections",
            "Open WebSocket connections and server-sent event streams",
            ("transport",),
            registry=registry,
        )
        self.graphql_operations = Counter(
            "confab_graphql_operations",
            "GraphQL operations run, by operation name (bounded) and type",
            ("operation", "type"),
            registry=registry,
        )
        self.graphql_errors = Counter(
            "confab_graphql_errors",
            "Errors in GraphQL results, by extensions.code",
            ("code",),
            registry=registry,
        )
        self.graphql_streams = Gauge(
            "confab_graphql_subscriptions",
            "Streaming GraphQL operations open (subscriptions over WebSocket, SSE, multipart)",
            registry=registry,
        )
        self.turns_running = Gauge(
            "confab_turns_running", "Turns running in this process", registry=registry
        )
        self.turns_finished = Counter(
            "confab_turns_finished",
            "Turns ended in this process, by outcome",
            ("outcome",),
            registry=registry,
        )
        self.feedback = Counter(
            "confab_feedback",
            "Ratings of assistant messages given (or changed), by kind and value",
            ("kind", "value"),
            registry=registry,
        )
        self.model_duration = Histogram(
            "confab_model_call_duration_seconds",
            "One model call, from the request to the end of its stream, by backend and outcome",
            ("backend", "outcome"),
            buckets=MODEL_BUCKETS,
            registry=registry,
        )
        self.model_tokens = Counter(
            "confab_model_tokens",
            "Tokens the model backend reported (prompt, completion)",
            ("backend", "kind"),
            registry=registry,
        )
        self.tool_runs = Counter(
            "confab_tool_runs",
            "Tool runs, by tool (the app's configured names; others are 'unknown') and outcome",
            ("tool", "outcome"),
            registry=registry,
        )
        self.prompt_tokens = Histogram(
            "confab_turn_prompt_tokens",
            "Tokens a turn sent to the model (its first call: system prompt, memories, "
            "summary, recent messages), by backend",
            ("backend",),
            buckets=(256, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072),
            registry=registry,
        )
        self.prompt_messages = Histogram(
            "confab_turn_prompt_messages",
            "Messages a turn sent to the model (its first call), by backend",
            ("backend",),
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=registry,
        )
        self.tool_duration = Histogram(
            "confab_tool_run_duration_seconds",
            "One tool run, by tool",
            ("tool",),
            buckets=TOOL_BUCKETS,
            registry=registry,
        )
        self.operation_name = BoundedNames(operation_names)
        # Label children by (name, type) and by code: `labels()` takes a lock.
        self._operations: dict[tuple[str | None, str], Any] = {}
        self._errors: dict[str, Any] = {}
        self._collector: RuntimeCollector | None = None

    def watch(self, runtime: Runtime) -> None:
        """Read the runtime's own counters at each scrape from now on."""
        if self._collector is None:
            self._collector = RuntimeCollector()
            self.registry.register(self._collector)
        self._collector.runtime = runtime

    def forget(self) -> None:
        if self._collector is not None:
            self._collector.runtime = None

    def graphql_operation(self, name: str | None, operation_type: str) -> None:
        key = (name, operation_type)
        child = self._operations.get(key)
        if child is None:
            label = self.operation_name(name) if name else "anonymous"
            child = self.graphql_operations.labels(label, operation_type)
            if label != OTHER:  # names past the bound are not remembered one by one
                self._operations[key] = child
        child.inc()

    def graphql_error_codes(self, codes: Iterable[str]) -> None:
        for code in codes:
            child = self._errors.get(code)
            if child is None:
                child = self._errors[code] = self.graphql_errors.labels(code)
            child.inc()


# The bus's `stats` keys (runtime/events/bus.py), as counters.
_BUS_COUNTERS = (
    ("published", "confab_events_published", "Events stored and published by this process"),
    (
        "delivered",
        "confab_events_delivered",
        "Events handed to this process's subscribers (one per subscriber)",
    ),
    (
        "overflows",
        "confab_events_dropped_slow_consumer",
        "Subscribers closed because they fell behind their queue bound",
    ),
    (
        "replayed",
        "confab_events_replayed",
        "Events replayed from the log to subscribers resuming from a cursor",
    ),
    (
        "resyncs",
        "confab_events_resync_required",
        "resync_required events sent (a cursor the replay log could not resume)",
    ),
    ("publish_failures", "confab_events_publish_failures", "Failed attempts to publish to Redis"),
    (
        "retried",
        "confab_events_publish_retried",
        "Events published after waiting for Redis to come back",
    ),
    (
        "dropped",
        "confab_events_outbox_dropped",
        "Events dropped because the publish buffer was full (Redis away too long)",
    ),
)


class RuntimeCollector(Collector):
    """What the runtime counts anyway, read when Prometheus scrapes."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        runtime = self.runtime
        if runtime is None:
            return []
        metrics: list[Metric] = []
        try:
            metrics.extend(_bus(runtime))
            metrics.extend(_turns(runtime))
            metrics.extend(_janitor(runtime))
            metrics.extend(_database())
            cached = GaugeMetricFamily(
                "confab_cached_sessions", "Sessions held in this process's cache"
            )
            health = runtime.sessions.health()
            cached.add_metric([], health["cached_sessions"])
            metrics.append(cached)
            sole = GaugeMetricFamily(
                "confab_sole_writer",
                "1 while this replica is provably the only writer, so cached sessions are "
                "answered without a Redis check",
            )
            sole.add_metric([], health["sole_writer"])
            metrics.append(sole)
        except Exception as exc:  # a scrape never fails for one reading
            logger.warning("metrics: could not read the runtime: %s", type(exc).__name__)
        return metrics


def _bus(runtime: Runtime) -> Iterator[Metric]:
    events = runtime.events
    stats = events.stats
    for key, name, documentation in _BUS_COUNTERS:
        counter = CounterMetricFamily(name, documentation)
        counter.add_metric([], stats.get(key, 0))
        yield counter
    subscribers = GaugeMetricFamily(
        "confab_event_subscribers", "Event subscriptions open in this process"
    )
    subscribers.add_metric([], events.subscriber_count())
    yield subscribers
    outbox = GaugeMetricFamily(
        "confab_events_outbox_depth", "Events accepted but not yet stored (waiting for Redis)"
    )
    outbox.add_metric([], events.pending_publishes)
    yield outbox


def _turns(runtime: Runtime) -> Iterator[Metric]:
    queued = GaugeMetricFamily(
        "confab_turns_queued", "Turns accepted by this process and waiting to run"
    )
    queued.add_metric([], runtime.turns.waiting_turns)
    yield queued
    busy = GaugeMetricFamily(
        "confab_turn_sessions_busy", "Sessions with turns queued or running in this process"
    )
    busy.add_metric([], runtime.turns.busy_sessions)
    yield busy


def _janitor(runtime: Runtime) -> Iterator[Metric]:
    janitor = runtime.janitor
    sweeps = CounterMetricFamily("confab_janitor_sweeps", "Janitor sweeps this process ran")
    sweeps.add_metric([], janitor.sweeps)
    yield sweeps
    expired = CounterMetricFamily(
        "confab_janitor_expired_sessions", "Expired sessions the janitor deleted"
    )
    expired.add_metric([], janitor.swept)
    yield expired


def _database() -> Iterator[Metric]:
    """The asyncpg pool behind Tortoise (nothing on SQLite, which has no pool)."""
    pool = _asyncpg_pool()
    if pool is None:
        return
    size, idle = pool.get_size(), pool.get_idle_size()
    connections = GaugeMetricFamily(
        "confab_db_pool_connections", "Database pool connections, by state", labels=("state",)
    )
    connections.add_metric(["in_use"], size - idle)
    connections.add_metric(["idle"], idle)
    yield connections
    limit = GaugeMetricFamily("confab_db_pool_max_connections", "The database pool's size limit")
    limit.add_metric([], pool.get_max_size())
    yield limit
    # asyncpg keeps no wait counter; the queue's waiting getters are the requests
    # waiting for a connection right now (a private attribute: absent, no sample).
    getters = getattr(getattr(pool, "_queue", None), "_getters", None)
    if getters is not None:
        waiting = GaugeMetricFamily(
            "confab_db_pool_waiting", "Requests waiting for a database connection now"
        )
        waiting.add_metric([], len(getters))
        yield waiting


def _asyncpg_pool() -> Any:
    try:
        from tortoise import connections

        client = connections.get("default")
    except Exception:
        return None
    pool = getattr(client, "_pool", None)
    return pool if pool is not None and hasattr(pool, "get_idle_size") else None
