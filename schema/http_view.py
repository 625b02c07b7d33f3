"""The HTTP half of the GraphQL view: GraphQL over HTTP (schema/http_protocol.py) and
multipart subscriptions, in front of the schema's one operation runner.

Strawberry's HTTP path answers request errors as `text/plain` 400s, knows one media
type, and with Confab's `subscription_protocols` never offered multipart, so an
Apollo multipart subscription ran as a query (an `INTERNAL` error). This handles
every HTTP request to `/graphql` itself: it reads the request, builds the context
(the view's `get_context`: auth), runs each operation with `ConfabSchema.execute`
(or `stream`, for a subscription the client accepts as multipart), and frames the
answer with the view's `process_result` and `encode_json` (the response bound).
WebSockets keep Strawberry's handlers; GraphQL over SSE is answered before the view
(schema/sse.py).

A multipart subscription ends when the client leaves, when the server shuts down,
and when the key it authenticated with is revoked (a last part with an
`UNAUTHENTICATED` error first).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from strawberry.exceptions import MissingQueryError
from strawberry.http.streaming import MultipartSubscriptionTransport
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from runtime.key_watch import ConnectionGuard
from schema.build import ConfabSchema, StreamingRequired
from schema.context import Context
from schema.errors import VALIDATION_FAILED, request_error
from schema.http_protocol import (
    Accepts,
    BadRequest,
    Params,
    answer_body,
    answer_status,
    json_response,
    negotiate,
    params_from_body,
    params_from_query_string,
)

if TYPE_CHECKING:
    from strawberry.asgi import GraphQL

    _View = GraphQL[Context, None]
else:
    _View = object

_GET = frozenset({OperationType.QUERY})
_POST = frozenset({OperationType.QUERY, OperationType.MUTATION})
_MULTIPART = MultipartSubscriptionTransport()


class SubResponse:
    """What `get_context` may set on the answer (429 and `Retry-After`)."""

    __slots__ = ("headers", "status_code")

    def __init__(self) -> None:
        self.status_code: int | None = None
        self.headers: dict[str, str] = {}


class GraphQLOverHTTP(_View):
    """Mix in first: `class V(GraphQLOverHTTP, ResponseSizeLimit, GraphQL[...])`."""

    batch_limit: int = 10

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response = await self.handle_http(Request(scope, receive))
        await response(scope, receive, send)

    async def handle_http(self, request: Request) -> Response:
        accepts = negotiate(request.headers.get("accept"))
        method = request.method
        try:
            if method == "GET":
                if self._wants_ide(request):
                    if not self.graphql_ide:
                        raise BadRequest("there is no GraphQL IDE here", status=404)
                    return await self.render_graphql_ide(request)
                operation: Params | list[Params | BadRequest] = params_from_query_string(
                    request.query_params
                )
            elif method == "POST":
                operation = await params_from_body(request, self.batch_limit)
            else:
                raise BadRequest(
                    "GraphQL takes GET and POST", status=405, headers={"Allow": "GET, POST"}
                )
        except BadRequest as bad:
            return self._refusal(bad, accepts)
        sub_response = SubResponse()
        context = await self.get_context(request, sub_response)  # type: ignore[arg-type]
        if isinstance(operation, list):
            return await self._batch(request, operation, context, accepts, sub_response)
        try:
            result = await self._execute(operation, context, method)
        except BadRequest as bad:
            return self._refusal(bad, accepts)
        if isinstance(result, StreamingRequired) and accepts.multipart_subscriptions:
            return await self._multipart(request, operation, context, sub_response)
        body = answer_body(await self.process_result(request, result), result, accepts)
        status = sub_response.status_code or answer_status(result, accepts)
        return json_response(self.encode_json(body), status, accepts, sub_response.headers)

    def _wants_ide(self, request: Request) -> bool:
        params = request.query_params
        if "query" in params or "extensions" in params:
            return False
        accept = request.headers.get("accept", "")
        return "text/html" in accept or "*/*" in accept

    async def _execute(self, params: Params, context: Context, method: str) -> ExecutionResult:
        schema = self.schema
        try:
            return await schema.execute(
                params.query,
                params.variables,
                context,
                None,
                params.operation_name,
                _GET if method == "GET" else _POST,
                params.extensions,
            )
        except InvalidOperationTypeError as exc:
            raise BadRequest(
                f"a {exc.operation_type.value} cannot run over GET: use POST",
                status=405,
                headers={"Allow": "POST"},
            ) from None
        except CannotGetOperationTypeError:
            name = params.operation_name
            message = (
                f"the document has no operation named {name!r}"
                if name
                else "the document must hold exactly one operation, or name one (operationName)"
            )
            return request_error(message, VALIDATION_FAILED)
        except MissingQueryError:
            raise BadRequest("no GraphQL query in the request") from None

    async def _batch(
        self,
        request: Request,
        items: list[Params | BadRequest],
        context: Context,
        accepts: Accepts,
        sub_response: SubResponse,
    ) -> Response:
        """One after another, in order (a mutation may depend on the one before)."""
        answers: list[object] = []
        for item in items:
            if isinstance(item, Params):
                try:
                    result = await self._execute(item, context, "POST")
                except BadRequest as bad:
                    answers.append(bad.body())
                    continue
                formatted = await self.process_result(request, result)
                answers.append(answer_body(formatted, result, accepts))
            else:
                answers.append(item.body())
        status = sub_response.status_code or 200
        return json_response(self.encode_json(answers), status, accepts, sub_response.headers)

    def _refusal(self, bad: BadRequest, accepts: Accepts) -> Response:
        return json_response(self.encode_json(bad.body()), bad.status, accepts, bad.headers)

    # -- multipart subscriptions ---------------------------------------------------------

    async def _multipart(
        self, request: Request, params: Params, context: Context, sub_response: SubResponse
    ) -> Response:
        schema = self.schema
        assert isinstance(schema, ConfabSchema)
        results = await schema.stream(
            params.query,
            variable_values=params.variables,
            context_value=context,
            operation_name=params.operation_name,
            operation_extensions=params.extensions,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )
        # Strawberry's framing: heartbeats, `{"payload": ...}` parts, the closing boundary.
        frames = self._stream_result(request, cast("Any", results), _MULTIPART)
        revoked = asyncio.Event()

        async def on_revoked() -> None:
            revoked.set()

        guard = ConnectionGuard(context.runtime.apps.key_watch, on_revoked)
        guard.watch(context.key_prefix)
        body = self._until_ended(frames(), request.app.state.shutting_down, revoked, guard)
        headers = {**sub_response.headers, **_MULTIPART.headers}
        return StreamingResponse(body, status_code=sub_response.status_code or 200, headers=headers)

    async def _until_ended(
        self,
        frames: AsyncGenerator[str, None],
        shutting_down: asyncio.Event,
        revoked: asyncio.Event,
        guard: ConnectionGuard,
    ) -> AsyncIterator[str]:
        ended = [asyncio.ensure_future(shutting_down.wait()), asyncio.ensure_future(revoked.wait())]
        try:
            while True:
                step = asyncio.ensure_future(anext(frames))
                await asyncio.wait((step, *ended), return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    with contextlib.suppress(BaseException):
                        await step
                    if revoked.is_set():
                        error = {
                            "message": "the app key was revoked",
                            "extensions": {"code": "UNAUTHENTICATED"},
                        }
                        last = {"payload": None, "errors": [error]}
                        yield _MULTIPART.encode_multipart_data(last, self.encode_json_string)
                    yield _MULTIPART.encode_complete()
                    return
                try:
                    frame = step.result()
                except StopAsyncIteration:
                    return
                yield frame
        finally:
            guard.release()
            for waiter in ended:
                waiter.cancel()
            await frames.aclose()
