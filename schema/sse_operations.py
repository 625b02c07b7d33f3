"""Runs one GraphQL over SSE operation through the schema, onto an event stream.

Queries and mutations take `ConfabSchema.execute` (cached parse and validation, the
cost check, error mapping), subscriptions `schema.subscribe` (the same checks in
Confab's extension, schema/documents.py), so no limit is skipped here. Results are
formatted by the HTTP view (`process_result`) and encoded by it (`encode_json`:
the response size limit). Live events take the rendered-once path of the WebSocket
transport (schema/live.py): subscribers of the same operation and variables share
one execution and one encoding of each event, whatever their transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from strawberry.types import Info
from strawberry.types.graphql import OperationType
from strawberry.utils.operation import get_operation_type

from graphql import GraphQLError
from runtime.events import Event
from schema.build import ConfabSchema
from schema.context import Context
from schema.live import LIVE_SINK, LiveSink
from schema.persisted import DocumentRefused
from schema.sse_requests import Params
from schema.sse_streams import EventStream, error_result

if TYPE_CHECKING:
    from schema.view import ConfabGraphQL


class Operations:
    def __init__(self, view: ConfabGraphQL) -> None:
        schema = view.schema
        assert isinstance(schema, ConfabSchema), "GraphQL over SSE needs Confab's schema"
        self._view, self._schema = view, schema

    async def start(
        self, stream: EventStream, key: str, params: Params, context: Context, request: Request
    ) -> None:
        """Run the operation on the stream under `key` ("" in distinct connections mode).

        A persisted query (or, in trusted mode, any document) is resolved first, by the
        schema's one rule for every transport, since its type decides how it runs."""
        if params.query is None or self._schema.resolves(params.extensions):
            try:
                query = await self._schema.resolve_query(
                    params.query, params.extensions, params.operation_name
                )
            except DocumentRefused as refused:
                answer = await self._view.process_result(request, refused.result())
                stream.start(key, lambda: stream.send_result(key, answer), streaming=False)
                return
            params = replace(params, query=query)
        kind = self._kind(params, request.method)
        if isinstance(kind, dict):
            refusal = kind
            stream.start(key, lambda: stream.send_result(key, refusal), streaming=False)
            return
        streaming = kind is OperationType.SUBSCRIPTION
        run = self._subscribe if streaming else self._execute
        stream.start(key, lambda: run(stream, key, params, context, request), streaming=streaming)

    def _kind(self, params: Params, method: str) -> OperationType | dict[str, object]:
        """The operation's type, or the error result that says why it cannot run."""
        try:
            document = self._schema.documents.parsed(params.query or "").document
        except GraphQLError:
            return OperationType.QUERY  # `execute` reports the syntax error
        try:
            kind = get_operation_type(document, params.operation_name)
        except RuntimeError:
            name = params.operation_name
            message = f"no operation named {name!r}" if name else "the document has no operation"
            return error_result(message, "GRAPHQL_VALIDATION_FAILED")
        if kind is OperationType.MUTATION and method == "GET":
            return error_result("mutations are not allowed over GET: use POST", "BAD_REQUEST")
        return kind

    async def _execute(
        self, stream: EventStream, key: str, params: Params, context: Context, request: Request
    ) -> None:
        result = await self._schema.execute(
            params.query,
            params.variables,
            context,
            operation_name=params.operation_name,
            allowed_operation_types=(OperationType.QUERY, OperationType.MUTATION),
            operation_extensions=params.extensions,
        )
        await stream.send_result(key, await self._view.process_result(request, result))

    async def _subscribe(
        self, stream: EventStream, key: str, params: Params, context: Context, request: Request
    ) -> None:
        LIVE_SINK.set(_StreamSink(stream, key, params.variables))  # this task's context
        results = await self._schema.subscribe(
            params.query,
            params.variables,
            context,
            operation_name=params.operation_name,
            operation_extensions=params.extensions,
        )
        try:
            async for result in results:
                await stream.send_result(key, await self._view.process_result(request, result))
        finally:
            await results.aclose()


class _StreamSink(LiveSink):
    """A live event's shared rendering (schema/live.py), written to this stream under
    this operation's id."""

    def __init__(self, stream: EventStream, key: str, variables: dict[str, Any] | None) -> None:
        super().__init__(self._unused, key, variables)
        self._stream, self._key = stream, key

    @staticmethod
    async def _unused(text: str) -> None:
        raise AssertionError("SSE frames are written by `deliver`")

    async def deliver(
        self, info: Info[Context, None], view: Callable[[Event], object], event: Event
    ) -> bool:
        payload = await self._render(info, view, event)
        if payload is None:
            return False  # errors, or too large: Strawberry's path, then `send_result`
        await self._stream.send_payload(self._key, payload)
        return True
