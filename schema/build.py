"""Builds the Strawberry schema with Confab's extensions, limits and execution."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Mapping
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import strawberry
from strawberry.exceptions import MissingQueryError
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from graphql import GraphQLError, execute, specified_rules
from runtime.errors import ConfabError, RateLimited
from runtime.shared_state import redis_url
from runtime.telemetry import tracing
from runtime.telemetry.metrics import BoundedNames, Metrics
from schema.context import Context
from schema.cost import cost_error, cost_report
from schema.documents import PreparedDocuments
from schema.errors import DomainErrors, RequestErrors, request_error, to_graphql_error
from schema.execution import ConfabExecutor
from schema.persisted import DocumentRefused, PersistedQueries
from schema.session_reads import SessionReads, session_read
from schema.validation_rules import bound_overlap_comparisons, document_limits_rule
from settings import Settings

if TYPE_CHECKING:
    from strawberry.schema.schema import StreamResult

STREAMING_REQUIRED = "STREAMING_TRANSPORT_REQUIRED"
TRANSPORTS = (
    "a WebSocket at /graphql (graphql-transport-ws or graphql-ws), GraphQL over SSE "
    "(Accept: text/event-stream), or multipart HTTP "
    '(Accept: multipart/mixed;subscriptionSpec="1.0")'
)

# Strawberry's cheaper check for its own resolvers' results (graphql-core's asks more).
_IS_AWAITABLE = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)


class StreamingRequired(RequestErrors):
    """A subscription sent where one result is expected: it needs a streaming
    transport (the HTTP view answers it multipart when the client accepts that)."""


def streaming_required() -> StreamingRequired:
    error = GraphQLError(
        f"a subscription streams its results: send it over {TRANSPORTS}",
        extensions={"code": STREAMING_REQUIRED},
    )
    return StreamingRequired(data=None, errors=[error], status=400)


class ConfabSchema(strawberry.Schema):
    """The one operation runner every transport calls; queries and mutations run on
    a lean path, subscriptions on Strawberry's.

    - `execute`: one result (queries and mutations; HTTP, SSE).
    - `stream` / `subscribe`: an async iterator of results for any operation type
      (subscriptions, and queries or mutations over WebSockets, SSE, multipart).

    Both resolve the document first (`resolve_query`: persisted queries and trusted
    documents, schema/persisted.py), then apply the same limits: the token limit at
    parse, Confab's depth and alias rules at validation, the cost before execution
    (schema/documents.py on Strawberry's path), error mapping (schema/errors.py).
    Auth is the context's (schema/context.py, built by the view); the response
    bound is the view's encoder (schema/response_limit.py).

    Strawberry's `execute` sets up an execution context, a middleware manager and
    four extension hook managers per operation; on a small query that costs more
    than the execution itself. Confab's extensions here are only its cached
    parse-and-validate and its error mapping, so `execute` does those two directly,
    in Strawberry's order and with Strawberry's exceptions for the HTTP view:
    parse (syntax errors are results), check the operation type (exceptions; a
    subscription is a `StreamingRequired` result), validate, check the cost
    (schema/cost.py), execute. The cost goes into the result's `extensions`. Errors
    found before execution began come back as `RequestErrors` (no `data`, an HTTP
    status). A persisted-query lookup happens only when the request's extensions
    name one, the trusted-set check only in trusted mode.

    `max_response_bytes` is read by the view (schema/response_limit.py), which is
    where a response is encoded.

    `metrics` (set by server.py; None when metrics are off) counts operations by
    name and type, errors by code, and open streams; with tracing on, each
    operation is a `graphql` span.
    """

    metrics: Metrics | None = None

    def __init__(
        self,
        *,
        documents: PreparedDocuments,
        persisted: PersistedQueries,
        max_response_bytes: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.documents = documents
        self.persisted = persisted
        self.max_response_bytes = max_response_bytes
        self.session_reads = SessionReads()

    async def resolve_query(
        self,
        query: str | None,
        extensions: Mapping[str, Any] | None,
        operation_name: str | None = None,
    ) -> str | None:
        """The document text a request runs (its own, or the one its persisted hash
        names), once allowed; raises `DocumentRefused`, whose `result()` is the answer."""
        return await self.persisted.resolve(
            query, extensions, operation_name, self.documents, self._schema
        )

    def resolves(self, extensions: Mapping[str, Any] | None) -> bool:
        """Whether a request's document must go through `resolve_query` first."""
        return self.persisted.trusted_only or (
            extensions is not None and "persistedQuery" in extensions
        )

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        metrics = self.metrics
        if metrics is None and not tracing.enabled():
            return await self._execute(
                query,
                variable_values,
                context_value,
                root_value,
                operation_name,
                allowed_operation_types,
                operation_extensions,
            )
        kind = [UNKNOWN_TYPE]
        result: ExecutionResult | None = None
        attributes = {"graphql.operation.name": operation_name or ""} if tracing.enabled() else None
        try:
            with tracing.span("graphql", attributes) as current:
                result = await self._execute(
                    query,
                    variable_values,
                    context_value,
                    root_value,
                    operation_name,
                    allowed_operation_types,
                    operation_extensions,
                    kind,
                )
                if current is not None:
                    current.set_attribute("graphql.operation.type", kind[0])
                    current.update_name(f"graphql {kind[0]} {operation_name or ''}".rstrip())
        finally:
            if metrics is not None:
                metrics.graphql_operation(operation_name, kind[0])
                if result is None:
                    metrics.graphql_error_codes(("BAD_REQUEST",))
                elif result.errors:
                    metrics.graphql_error_codes(_codes(result.errors))
        return result

    async def _execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None,
        context_value: Any | None,
        root_value: Any | None,
        operation_name: str | None,
        allowed_operation_types: Iterable[OperationType] | None,
        operation_extensions: dict[str, Any] | None,
        kind: list[str] | None = None,
    ) -> ExecutionResult:
        """`execute` itself; `kind` receives the operation's type once known."""
        limited = await _rate_limited(context_value)
        if limited is not None:
            return limited
        if self.resolves(operation_extensions):
            try:
                query = await self.resolve_query(query, operation_extensions, operation_name)
            except DocumentRefused as refused:
                return refused.result()
        if not query:
            raise MissingQueryError
        try:
            prepared = self.documents.parsed(query)
        except GraphQLError as error:
            return RequestErrors(data=None, errors=[to_graphql_error(error)])
        try:
            operation_type = get_operation_type(prepared.document, operation_name)
        except RuntimeError as error:
            raise CannotGetOperationTypeError(operation_name) from error
        if kind is not None:
            kind[0] = operation_type.value
        if operation_type is OperationType.SUBSCRIPTION:
            return streaming_required()
        if operation_type not in (allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES):
            raise InvalidOperationTypeError(operation_type)
        documents = self.documents
        invalid = documents.errors(prepared, self._schema, specified_rules)
        if invalid:
            return RequestErrors(data=None, errors=[to_graphql_error(e) for e in invalid])
        cost = documents.cost(prepared, self._schema, operation_name, variable_values)
        report = cost_report(cost, documents.max_cost)
        if cost > documents.max_cost:
            return RequestErrors(
                data=None, errors=[cost_error(cost, documents.max_cost)], extensions=report
            )
        read = session_read(prepared, query, operation_name, variable_values, context_value)
        if read is not None:
            kept = await self.session_reads.answer(read.key, read.session_id, read.conversations)
            if kept is not None:
                return kept
            before = read.conversations.cached_version(read.session_id)
        outcome = execute(
            self._schema,
            prepared.document,
            root_value=root_value,
            context_value=context_value,
            variable_values=variable_values,
            operation_name=operation_name,
            executor_class=ConfabExecutor,
            is_awaitable=_IS_AWAITABLE,
            operation_extensions=operation_extensions,
        )
        result = await outcome if isawaitable(outcome) else outcome
        if not result.errors:
            answer = ExecutionResult(data=result.data, errors=None, extensions=report)
            if read is not None:
                self.session_reads.keep(
                    read.key, read.session_id, read.window, before, read.conversations, answer
                )
            return answer
        errors = [to_graphql_error(e) for e in result.errors]
        if result.data is None and all(error.path is None for error in errors):
            # Refused before any field ran: the variables' values.
            return RequestErrors(data=None, errors=errors, extensions=report)
        return ExecutionResult(data=result.data, errors=errors, extensions=report)

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> StreamResult:
        limited = await _rate_limited(context_value)
        if limited is not None:
            return _one(limited)
        if self.resolves(operation_extensions):
            try:
                query = await self.resolve_query(query, operation_extensions, operation_name)
            except DocumentRefused as refused:
                return _one(refused.result())
        results = await super().stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=allowed_operation_types,
        )
        if self.metrics is None:
            return results
        return self._counted(results, query, operation_name, self.metrics)

    async def _counted(
        self, results: Any, query: str | None, operation_name: str | None, metrics: Metrics
    ) -> AsyncGenerator[Any, None]:
        """A streamed operation, counted: once by name and type, its errors by code,
        and as an open stream while it runs."""
        metrics.graphql_operation(operation_name, self._operation_type(query, operation_name))
        open_streams = metrics.graphql_streams
        open_streams.inc()
        try:
            async for result in results:
                errors = getattr(result, "errors", None)
                if errors:
                    metrics.graphql_error_codes(_codes(errors))
                yield result
        finally:
            open_streams.dec()
            await results.aclose()

    def _operation_type(self, query: str | None, operation_name: str | None) -> str:
        if not query:
            return UNKNOWN_TYPE
        try:
            document = self.documents.parsed(query).document
            return get_operation_type(document, operation_name).value
        except (GraphQLError, RuntimeError):
            return UNKNOWN_TYPE

    async def subscribe(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> Any:
        """Any operation type, as `stream`: the legacy graphql-ws protocol runs its
        queries and mutations through here too (one result, then `complete`)."""
        return await self.stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """`DomainErrors` already logged what was unexpected; expected errors are not news."""

    async def aclose(self) -> None:
        await self.persisted.aclose()


async def _one(result: ExecutionResult) -> AsyncGenerator[ExecutionResult, None]:
    yield result


UNKNOWN_TYPE = "unknown"  # refused before the document's operation was known
# Error codes come from the server, but a bound costs nothing.
_error_code = BoundedNames(50)


def _codes(errors: Iterable[Any]) -> Iterator[str]:
    for error in errors:
        extensions = getattr(error, "extensions", None)
        if extensions is None and isinstance(error, Mapping):
            extensions = error.get("extensions")
        code = extensions.get("code") if isinstance(extensions, Mapping) else None
        yield _error_code(code) if isinstance(code, str) else "UNKNOWN"


async def _rate_limited(context: Any) -> RequestErrors | None:
    """For a WebSocket's operation (each counts; an HTTP request was counted when
    its context was built): the app's refusal, or None to go on. A caller whose
    authentication failed is not counted: its operation fails with that error."""
    if not isinstance(context, Context) or not context.per_operation_limits:
        return None
    try:
        caller = context.caller
    except ConfabError:
        return None
    try:
        await context.runtime.limits.request(caller)
    except RateLimited as refused:
        return request_error(
            refused.message, refused.code, status=429, retryAfter=refused.retry_after_seconds
        )
    return None


def build_schema(
    settings: Settings,
    query: type,
    mutation: type | None = None,
    subscription: type | None = None,
) -> strawberry.Schema:
    # Confab's depth and alias rule (schema/validation_rules.py: linear in the
    # document, where Strawberry's limiters were exponential in its fragments),
    # built once per schema like the cache it feeds; and graphql-core's comparison of
    # overlapping fields held to a budget of milliseconds.
    bound_overlap_comparisons()
    documents = PreparedDocuments(
        max_tokens=settings.graphql_max_tokens,
        rules=[document_limits_rule(settings.graphql_max_depth, settings.graphql_max_aliases)],
        maxsize=settings.graphql_cache_size,
        max_cost=settings.graphql_max_cost,
    )
    # Shared by replicas through Redis when the event bus is Redis.
    persisted = PersistedQueries(
        trusted_only=settings.graphql_trusted_documents,
        cache_size=settings.graphql_cache_size,
        redis_url=redis_url(settings.event_bus_url),
    )
    return ConfabSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        # Factories: Strawberry builds fresh instances per operation.
        extensions=[documents.extension, DomainErrors],
        execution_context_class=ConfabExecutor,
        documents=documents,
        persisted=persisted,
        max_response_bytes=settings.graphql_max_response_bytes,
    )
