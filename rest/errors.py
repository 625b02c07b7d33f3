"""REST errors: `{"error": "<reason>"}` with the contract's status codes.

Runtime errors map once, here; a backing service that cannot be reached is a 503;
anything else is logged and answered 500 without details.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from runtime.errors import (
    ConfabError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    QueueFull,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    is_unavailable,
)
from runtime.simulation import (
    NoSimulator,
    SimulationRefused,
    SimulatorFailed,
    SimulatorTimedOut,
)
from runtime.turns.service import MessageTooLarge

logger = logging.getLogger(__name__)

STATUS: list[tuple[type[ConfabError], int]] = [
    (MessageTooLarge, 413),
    (InvalidInput, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (QueueFull, 429),
    (RateLimited, 429),
    (ServiceUnavailable, 503),
    (SimulationRefused, 400),
    (NoSimulator, 501),
    (SimulatorFailed, 502),
    (SimulatorTimedOut, 504),
]


class BadRequest(ConfabError):
    """A malformed request (missing header, bad JSON body): 400."""

    code = "INVALID_INPUT"


def error_response(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def status_of(error: ConfabError) -> int:
    if isinstance(error, BadRequest):
        return 400
    for kind, status in STATUS:
        if isinstance(error, kind):
            return status
    return 500


async def handle_http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) in the same JSON shape."""
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, exc.detail)
    response.headers.update(exc.headers or {})
    return response


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await error_response(404, "no such endpoint")(scope, receive, send)


async def handle_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConfabError):
        response = error_response(status_of(exc), exc.message)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    if is_unavailable(exc):
        logger.warning(
            "%s %s: backing service unavailable: %r", request.method, request.url.path, exc
        )
        return error_response(503, "a backing service is unavailable; try again shortly")
    logger.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal server error")
