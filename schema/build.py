"""Builds the Strawberry schema with Confab's extensions, limits and execution."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from inspect import isawaitable
from typing import Any, TypeGuard, cast

import strawberry
from strawberry.exceptions import MissingQueryError
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from graphql import GraphQLError, execute, specified_rules
from schema.cost import cost_error, cost_report
from schema.documents import PreparedDocuments
from schema.errors import DomainErrors, to_graphql_error
from schema.execution import ConfabExecutor
from schema.validation_rules import bound_overlap_comparisons, document_limits_rule
from settings import Settings

# Strawberry's cheaper check for its own resolvers' results (graphql-core's asks more).
_IS_AWAITABLE = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)


class ConfabSchema(strawberry.Schema):
    """Queries and mutations run on a lean path; subscriptions on Strawberry's.

    Strawberry's `execute` sets up an execution context, a middleware manager and
    four extension hook managers per operation; on a small query that costs more
    than the execution itself. Confab's extensions here are only its cached
    parse-and-validate and its error mapping, so `execute` does those two directly,
    in Strawberry's order and with Strawberry's exceptions for the HTTP view:
    parse (syntax errors are results), check the operation type (exceptions),
    validate, check the cost (schema/cost.py), execute. The cost goes into the
    result's `extensions`. Subscriptions keep the extension hooks.

    `max_response_bytes` is read by the view (schema/response_limit.py), which is
    where a response is encoded.
    """

    def __init__(
        self, *, documents: PreparedDocuments, max_response_bytes: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.documents = documents
        self.max_response_bytes = max_response_bytes

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
        if not query:
            raise MissingQueryError
        try:
            prepared = self.documents.parsed(query)
        except GraphQLError as error:
            return ExecutionResult(data=None, errors=[to_graphql_error(error)])
        try:
            operation_type = get_operation_type(prepared.document, operation_name)
        except RuntimeError as error:
            raise CannotGetOperationTypeError(operation_name) from error
        if operation_type not in (allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES):
            raise InvalidOperationTypeError(operation_type)
        documents = self.documents
        invalid = documents.errors(prepared, self._schema, specified_rules)
        if invalid:
            return ExecutionResult(data=None, errors=[to_graphql_error(e) for e in invalid])
        cost = documents.cost(prepared, self._schema, operation_name, variable_values)
        report = cost_report(cost, documents.max_cost)
        if cost > documents.max_cost:
            return ExecutionResult(
                data=None, errors=[cost_error(cost, documents.max_cost)], extensions=report
            )
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
        errors = [to_graphql_error(e) for e in result.errors] if result.errors else None
        return ExecutionResult(data=result.data, errors=errors, extensions=report)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """`DomainErrors` already logged what was unexpected; expected errors are not news."""


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
    return ConfabSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        # Factories: Strawberry builds fresh instances per operation.
        extensions=[documents.extension, DomainErrors],
        execution_context_class=ConfabExecutor,
        documents=documents,
        max_response_bytes=settings.graphql_max_response_bytes,
    )
