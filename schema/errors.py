"""Maps runtime errors to GraphQL errors with a stable `extensions.code`.

Expected failures (`ConfabError`) keep their message; anything else is logged with
its traceback and masked, so internals never reach a client. Every error leaves with
a code: syntax and validation errors `GRAPHQL_VALIDATION_FAILED`, variable values
that do not fit their declared types (and argument values coerced from them)
`BAD_USER_INPUT`.

`RequestErrors` is a result whose errors came before execution began (the GraphQL
over HTTP spec's "request errors"): it has no `data` entry, and carries the HTTP
status the problem calls for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from strawberry.extensions import SchemaExtension
from strawberry.types.execution import PreExecutionError

from graphql import GraphQLError
from runtime.errors import ConfabError, RateLimited, is_unavailable

logger = logging.getLogger(__name__)

MASKED_MESSAGE = "Internal server error."
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
BAD_REQUEST = "BAD_REQUEST"
# graphql-core's messages for an argument value that fails coercion while a field
# executes (a variable's value used where it does not fit).
_ARGUMENT_ERROR_PREFIX = "Argument '"


@dataclass
class RequestErrors(PreExecutionError):
    """Errors found before execution began: nothing ran, the answer has no `data`.

    `status` is the HTTP status the problem calls for whatever the response's media
    type; None for problems with the document itself (syntax, validation, variables,
    cost, a document outside the trusted set), which the GraphQL over HTTP spec
    answers with 200 under `application/json` and 400 under
    `application/graphql-response+json`.
    """

    status: int | None = None


def request_error(
    message: str, code: str, status: int | None = None, **extensions: object
) -> RequestErrors:
    error = GraphQLError(message, extensions={"code": code, **extensions})
    return RequestErrors(data=None, errors=[error], status=status)


def to_graphql_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if original is None:
        if error.extensions and "code" in error.extensions:
            return error
        # Parse and validation errors come from graphql-core without an original.
        return _with_code(error, error.message, VALIDATION_FAILED)
    if isinstance(original, RateLimited):
        return _with_code(
            error, original.message, original.code, retryAfter=original.retry_after_seconds
        )
    if isinstance(original, ConfabError):
        return _with_code(error, original.message, original.code)
    if isinstance(original, GraphQLError):
        if error.extensions and "code" in error.extensions:
            return error
        # Without a path: a variable's value refused before execution; with one, an
        # argument coerced from such a value. Anything else with a path is a value
        # Confab produced that its own schema refuses (a leaf that does not
        # serialize): a bug, masked like any other.
        if error.path is None or error.message.startswith(_ARGUMENT_ERROR_PREFIX):
            return _with_code(error, error.message, BAD_USER_INPUT)
        logger.error("unrepresentable value at %s: %s", _path(error), error.message)
        return _with_code(error, MASKED_MESSAGE, "INTERNAL")
    if is_unavailable(original):
        logger.warning("backing service unavailable: %r", original)
        return _with_code(
            error, "a backing service is unavailable; try again shortly", "SERVICE_UNAVAILABLE"
        )
    logger.error("unexpected error in %s", _path(error), exc_info=original)
    return _with_code(error, MASKED_MESSAGE, "INTERNAL")


def _path(error: GraphQLError) -> str:
    return ".".join(map(str, error.path or []))


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
