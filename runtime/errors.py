"""The domain's expected failures. Transports map each `code` once: GraphQL puts it
in `extensions.code`, REST turns it into a status."""

from __future__ import annotations

import math
import sys


class ConfabError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ConfabError):
    code = "NOT_FOUND"


class InvalidInput(ConfabError):
    code = "INVALID_INPUT"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class Unauthenticated(ConfabError):
    code = "UNAUTHENTICATED"


class Forbidden(ConfabError):
    code = "FORBIDDEN"


class Conflict(ConfabError):
    code = "CONFLICT"


class QueueFull(ConfabError):
    code = "QUEUE_FULL"


class ServiceUnavailable(ConfabError):
    code = "SERVICE_UNAVAILABLE"


class RateLimited(ConfabError):
    """Too many attempts from one client: try again after `retry_after` seconds."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds, rounded up (`Retry-After`): a client that waits that long
        is let in."""
        return max(1, math.ceil(self.retry_after))


def is_unavailable(error: BaseException) -> bool:
    """A database or Redis that cannot be reached (refused, dropped, timed out)."""
    from tortoise.exceptions import DBConnectionError

    if isinstance(error, OSError | DBConnectionError | TimeoutError):
        return True
    # Never imported here: without Redis in use, no error can be one of its own.
    redis_errors = sys.modules.get("redis.exceptions")
    if redis_errors is not None and isinstance(error, redis_errors.ConnectionError):
        return True
    kind = type(error)
    if kind.__module__.startswith("asyncpg") and (
        "Connection" in kind.__name__ or "Interface" in kind.__name__
    ):
        return True
    cause = error.__cause__
    return cause is not None and cause is not error and is_unavailable(cause)
