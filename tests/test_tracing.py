"""Tracing, in process, with the SDK's in-memory exporter: one chat's spans
followed from its HTTP request through the turn (a background task) to the model
calls and the tool, with the database's and Redis's spans, all carrying the
request id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from runtime.telemetry import tracing
from server import create_app
from settings import Settings, load_apps
from tests.conftest import new_id, started
from tests.rest_client import ok, until_idle

REQUEST_ID = tracing.REQUEST_ID_ATTRIBUTE


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()


@pytest.fixture
async def http(
    exporter: InMemorySpanExporter, postgres_url: str, redis_url: str, apps_file: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=postgres_url,
        event_bus_url=redis_url,
        auto_migrate=True,
        config_file=str(apps_file),
        apps=load_apps(apps_file),
    )
    app = create_app(settings)
    async with started(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://confab.test") as client:
            yield client


def descends_from(span: ReadableSpan, ancestor: ReadableSpan, spans: dict[int, Any]) -> bool:
    parent = span.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        above = spans.get(parent.span_id)
        parent = above.parent if above is not None else None
    return False


async def test_one_chat_from_http_to_model_and_tool(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    rid = "trace-" + uuid.uuid4().hex
    session_id = new_id()
    response = await http.post(
        "/api/chat",
        params={"message": '/tool calculator {"expression": "1+1"}'},
        headers={"X-Session-Id": session_id, "X-Request-Id": rid},
    )
    ok(response)
    await until_idle(http, session_id)

    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    mine = [s for s in spans if (s.attributes or {}).get(REQUEST_ID) == rid]
    names = [s.name for s in mine]

    http_spans = [s for s in mine if s.name == "HTTP POST /api/chat"]
    assert len(http_spans) == 1, names
    request_span = http_spans[0]
    assert (request_span.attributes or {})["http.response.status_code"] == 200

    turns = [s for s in mine if s.name == "turn"]
    assert len(turns) == 1, names
    turn = turns[0]
    # The turn ran in a background task after the request answered, yet continues
    # its trace.
    assert turn.context.trace_id == request_span.context.trace_id
    assert descends_from(turn, request_span, by_id)
    assert (turn.attributes or {})["confab.session_id"] == session_id

    models = [s for s in mine if s.name == "model"]
    assert len(models) == 2, names  # before and after the tool
    assert all(descends_from(m, turn, by_id) for m in models)
    tools = [s for s in mine if s.name == "tool"]
    assert len(tools) == 1, names
    assert (tools[0].attributes or {})["confab.tool"] == "calculator"
    assert descends_from(tools[0], turn, by_id)

    # asyncpg's and redis-py's own spans, inside the request and inside the turn.
    database = [s for s in mine if (s.attributes or {}).get("db.system") == "postgresql"]
    redis = [s for s in mine if (s.attributes or {}).get("db.system") == "redis"]
    assert any(descends_from(s, request_span, by_id) for s in database), names
    assert any(descends_from(s, turn, by_id) for s in database), names
    assert redis, names


async def test_graphql_operations_are_spans(
    http: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    rid = "trace-" + uuid.uuid4().hex
    response = await http.post(
        "/graphql",
        json={"query": "query TraceProbe { apps { name } }", "operationName": "TraceProbe"},
        headers={"X-Request-Id": rid},
    )
    ok(response)
    spans = [
        s for s in exporter.get_finished_spans() if (s.attributes or {}).get(REQUEST_ID) == rid
    ]
    operations = [s for s in spans if s.name == "graphql query TraceProbe"]
    assert len(operations) == 1, [s.name for s in spans]
    assert (operations[0].attributes or {})["graphql.operation.type"] == "query"


def test_endpoint_without_the_packages_is_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import builtins

    real_import = builtins.__import__

    def without_otel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_otel)
    with caplog.at_level("WARNING"):
        on = tracing.setup_from_env({tracing.ENDPOINT_VARIABLE: "http://collector:4318"})
    assert on is False
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "not installed" in warnings[0].getMessage()
    assert tracing.setup_from_env({}) is False
