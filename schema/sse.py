"""GraphQL over Server-Sent Events on `/graphql`: the graphql-sse protocol, both modes.

- Distinct connections mode: `POST` (or `GET`) with `Accept: text/event-stream`
  answers an event stream of `next` messages (`data`: the execution result) and a
  final `complete`: one `next` for a query or mutation, one per event for a
  subscription. Problems with the operation itself (syntax, validation, limits,
  auth) arrive as a `next` with `errors`; only an unreadable request gets a 4xx.
- Single connection mode: `PUT` reserves a stream and answers its token (201);
  `GET` with the token (`X-GraphQL-Event-Stream-Token` header or `token` query
  parameter) and `Accept: text/event-stream` opens it; `POST` with the token and
  `extensions.operationId` starts an operation (202) whose `next` and `complete`
  messages carry `{"id", "payload"}` on that stream; `DELETE ?operationId=` stops one.

Auth is the HTTP view's (`ConfabGraphQL.get_context`, the app key in the headers).
A token belongs to the caller (app and key) that reserved it: every request naming
it must authenticate as that caller, except the `GET` that opens it, which may
carry no credentials at all (an `EventSource` cannot send headers). A stream holds
at most `CONFAB_WS_MAX_SUBSCRIPTIONS` operations at once; operations run through
the schema with every document limit (schema/sse_operations.py); streams end on
shutdown and when their key is revoked (schema/sse_streams.py).

Everything else sent to `/graphql` goes to the view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from runtime.apps import Caller
from runtime.errors import ConfabError, RateLimited
from runtime.key_watch import ConnectionGuard
from schema.context import Context
from schema.sse_operations import Operations
from schema.sse_requests import (
    TOKEN_HEADER,
    TOKEN_PARAM,
    Refusal,
    accepts_event_stream,
    bad_request,
    has_credentials,
    parse_params,
    stream_token,
    unknown_token,
)
from schema.sse_streams import EventStream, StreamRegistry, TooManyStreams, error_result
from settings import Settings

if TYPE_CHECKING:
    from schema.view import ConfabGraphQL

MAX_STREAMS_PER_CLIENT = 32  # reserved or open single-connection streams per address
MAX_OPERATION_ID = 200
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class GraphQLOverSSE:
    """An ASGI app for `/graphql`: graphql-sse requests here, the rest to the view."""

    def __init__(self, view: ConfabGraphQL, settings: Settings) -> None:
        self._view = view
        self._operations = Operations(view)
        self._keepalive = settings.sse_keepalive
        self._max_operations = settings.ws_max_subscriptions
        self.streams = StreamRegistry(
            max_per_client=MAX_STREAMS_PER_CLIENT, open_within=settings.ws_init_timeout
        )

    @staticmethod
    def handles(request: Request) -> bool:
        if request.method in ("PUT", "DELETE"):
            return True
        if request.method not in ("GET", "POST"):
            return False
        named = TOKEN_HEADER in request.headers or TOKEN_PARAM in request.query_params
        return named or accepts_event_stream(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if scope["type"] != "http" or not self.handles(request):
            await self._view(scope, receive, send)
            return
        try:
            response = await self._handle(request)
        except Refusal as refusal:
            response = refusal.response()
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        if request.app.state.shutting_down.is_set():
            raise Refusal(
                503, "the server is shutting down", "SERVICE_UNAVAILABLE", {"Retry-After": "1"}
            )
        if request.method == "PUT":
            return await self._reserve(request)
        token = stream_token(request)
        if token is None:
            if request.method == "DELETE":
                raise bad_request(f"DELETE needs the stream's token ({TOKEN_HEADER})")
            return await self._distinct(request)
        stream = self.streams.get(token)
        if stream is None:
            raise unknown_token()
        if request.method == "DELETE":
            return await self._stop(request, stream)
        if request.method == "GET" and accepts_event_stream(request):
            return await self._open(request, stream)
        return await self._operation(request, stream)

    # -- distinct connections mode --------------------------------------------------

    async def _distinct(self, request: Request) -> Response:
        params = await parse_params(request)
        context = await self._context(request)
        try:
            context.caller  # noqa: B018
        except RateLimited as exc:
            raise Refusal.of(exc) from exc
        except ConfabError:
            pass  # the operation reports it on the stream, as plain HTTP does in its body
        stream = EventStream(self._view.encode_json_string)
        self._guard(stream, context, context.key_prefix)
        await self._operations.start(stream, "", params, context, request)
        return self._event_stream(request, stream)

    # -- single connection mode -----------------------------------------------------

    async def _reserve(self, request: Request) -> Response:
        context = await self._context(request)
        caller = _caller(context)
        try:
            stream = self.streams.reserve(
                self._view.encode_json_string, (caller.app, caller.key_prefix), context.client
            )
        except TooManyStreams:
            limit = self.streams.max_per_client
            raise Refusal(
                429,
                f"this client already holds {limit} event streams: close one first",
                "TOO_MANY_STREAMS",
                maxStreams=limit,
            ) from None
        self._guard(stream, context, caller.key_prefix)
        assert stream.token is not None
        return PlainTextResponse(stream.token, status_code=201)

    async def _open(self, request: Request, stream: EventStream) -> Response:
        if has_credentials(request):
            await self._owned(request, stream)
        if stream.closed:
            raise unknown_token()
        if stream.opened:
            raise Refusal(
                409, "this event stream is already open: one connection reads it", "CONFLICT"
            )
        stream.opened = True
        return self._event_stream(request, stream)

    async def _operation(self, request: Request, stream: EventStream) -> Response:
        context = await self._owned(request, stream)
        params = await parse_params(request)
        key = (params.extensions or {}).get("operationId")
        if not isinstance(key, str) or not 0 < len(key) <= MAX_OPERATION_ID:
            raise bad_request(
                f"extensions.operationId: a string of 1 to {MAX_OPERATION_ID} characters is "
                "required in single connection mode"
            )
        if stream.closed:
            raise unknown_token()
        if key in stream.operations:
            raise Refusal(409, f"operation {key!r} is already running on this stream", "CONFLICT")
        if len(stream.operations) < self._max_operations:
            await self._operations.start(stream, key, params, context, request)
        else:  # as on a WebSocket: the operation is refused, the stream carries on
            refusal = error_result(
                f"Subscription limit reached: a stream holds {self._max_operations} operations",
                "TOO_MANY_SUBSCRIPTIONS",
                maxSubscriptions=self._max_operations,
            )
            stream.start(key, lambda: stream.send_result(key, refusal), streaming=False)
        return Response(status_code=202)

    async def _stop(self, request: Request, stream: EventStream) -> Response:
        await self._owned(request, stream)
        key = request.query_params.get("operationId")
        if not key:
            raise bad_request("the operationId query parameter is required")
        if not stream.stop(key):
            raise Refusal(404, f"no operation {key!r} on this stream", "NOT_FOUND")
        return Response(status_code=200)

    async def _owned(self, request: Request, stream: EventStream) -> Context:
        """The request's context, if it authenticates as the stream's owner."""
        context = await self._context(request)
        caller = _caller(context)
        if (caller.app, caller.key_prefix) != stream.owner:
            raise Refusal(
                403, "this event stream was reserved with another app key or app", "FORBIDDEN"
            )
        return context

    # -- both -----------------------------------------------------------------------

    async def _context(self, request: Request) -> Context:
        return await self._view.get_context(request, Response())

    def _guard(self, stream: EventStream, context: Context, key_prefix: str | None) -> None:
        """End the stream if its key is revoked (runtime/key_watch.py)."""
        guard = ConnectionGuard(context.runtime.apps.key_watch, stream.revoke)
        guard.watch(key_prefix)
        stream.on_close.append(guard.release)

    def _event_stream(self, request: Request, stream: EventStream) -> Response:
        body = stream.frames(request.app.state.shutting_down, self._keepalive)
        return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)


def _caller(context: Context) -> Caller:
    try:
        return context.caller
    except ConfabError as exc:
        raise Refusal.of(exc) from exc
