"""OpenTelemetry tracing, optional: the `[otel]` extra installed and
`OTEL_EXPORTER_OTLP_ENDPOINT` set (the exporter reads its other `OTEL_*`
variables itself). Without the variable nothing is imported; with it but without
the packages, one warning and the server runs untraced.

Spans: `http` (edge/observe.py), `graphql` (schema/build.py), `turn`, `model`
and `tool` (runtime/turns), and asyncpg's and redis-py's own spans (their
instrumentations, when installed). Every span gets the request id of the context
it starts in (`confab.request_id`), by a span processor, so the database and
Redis spans have it too.

`span()` costs one global read when tracing is off.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

from runtime.telemetry.context import request_id

logger = logging.getLogger(__name__)

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
REQUEST_ID_ATTRIBUTE = "confab.request_id"

_tracer: Any = None
_NO_SPAN = contextlib.nullcontext(None)


def enabled() -> bool:
    return _tracer is not None


def setup_from_env(env: Mapping[str, str] | None = None) -> bool:
    """Export spans over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; True if on."""
    env = os.environ if env is None else env
    if not env.get(ENDPOINT_VARIABLE):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning(
            "%s is set but OpenTelemetry is not installed (pip install 'confab[otel]'): "
            "tracing is off",
            ENDPOINT_VARIABLE,
        )
        return False
    service = env.get("OTEL_SERVICE_NAME") or "confab"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    install(provider)
    logger.info("tracing: exporting spans to %s", _endpoint_without_secrets(env))
    return True


def install(provider: Any) -> None:
    """Trace with this `TracerProvider` (tests give one with an in-memory exporter)."""
    global _tracer
    from opentelemetry import trace

    provider.add_span_processor(RequestIdProcessor())
    trace.set_tracer_provider(provider)
    _tracer = provider.get_tracer("confab")
    _instrument_libraries(provider)


def uninstall() -> None:
    """Stop tracing (and the libraries' instrumentation): for tests."""
    global _tracer
    _tracer = None
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    except ImportError:
        pass
    try:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().uninstrument()
    except ImportError:
        pass


def _instrument_libraries(provider: Any) -> None:
    """asyncpg's and redis-py's spans, when their instrumentations are installed."""
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        instrumentor: Any = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    except ImportError:
        pass
    try:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        instrumentor = RedisInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    except ImportError:
        pass


class RequestIdProcessor:
    """Stamps the current request id on every span as it starts."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        rid = request_id.get()
        if rid is not None:
            span.set_attribute(REQUEST_ID_ATTRIBUTE, rid)

    def on_end(self, span: Any) -> None:
        pass

    def _on_ending(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def span(name: str, attributes: Mapping[str, Any] | None = None, parent: Any = None) -> Any:
    """A context manager: a span named `name`, current while it is open (a no-op
    when tracing is off). `parent`: a context from `current_context()`, for work
    that runs after the request that asked for it (a turn)."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return tracer.start_as_current_span(name, context=parent, attributes=attributes)


def current_context() -> Any:
    """The current trace context, to continue elsewhere (None when tracing is off)."""
    if _tracer is None:
        return None
    from opentelemetry import context

    return context.get_current()


def _endpoint_without_secrets(env: Mapping[str, str]) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(env.get(ENDPOINT_VARIABLE, ""))
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
