"""Maps runtime errors to GraphQL errors with a stable `extensions.code`.

Expected failures (`ConfabError`) keep their message; anything else is logged with
its traceback and masked, so internals never reach a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from graphql import GraphQLError
from runtime.errors import ConfabError, RateLimited, is_unavailable

logger = logging.getLogger(__name__)

MASKED_MESSAGE = "Internal server error."


def to_graphql_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None:
        if error.extensions and "code" in error.extensions:
            return error
        # Parse and validation errors come from graphql-core without an original.
        return _with_code(error, error.message, "GRAPHQL_VALIDATION_FAILED")
    if isinstance(original, RateLimited):
        return _with_code(
            error, original.message, original.code, retryAfter=original.retry_after_seconds
        )
    if isinstance(original, ConfabError):
        return _with_code(error, original.message, original.code)
    if isinstance(original, GraphQLError):
        return error
    if is_unavailable(original):
        logger.warning("backing service unavailable: %r", original)
        return _with_code(
            error, "a backing service is unavailable; try again shortly", "SERVICE_UNAVAILABLE"
        )
    logger.error("unexpected error in %s", ".".join(map(str, error.path or [])), exc_info=original)
    return _with_code(error, MASKED_MESSAGE, "INTERNAL")


def _with_code(error: GraphQLError, message: str, code: str, **extra: object) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={**(error.extensions or {}), "code": code, **extra},
    )


class DomainErrors(SchemaExtension):
    """Applies `to_graphql_error` to query/mutation results and to each subscription
    result (converted errors pass through unchanged, so either hook may see them)."""

    def on_operation(self) -> Iterator[None]:
        yield
        _convert(self.execution_context.result)

    def on_stream_result(self, result: object) -> Iterator[None]:
        _convert(result)
        yield


def _convert(result: object) -> None:
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [to_graphql_error(error) for error in errors]  # type: ignore[attr-defined]
