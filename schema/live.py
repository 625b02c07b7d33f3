"""Live events straight to a graphql-transport-ws subscriber, rendered once per event.

Stock Strawberry runs every event of every subscription through graphql-core's
execution, its own result handling and extension hooks, and a JSON encoding: with
1,000 subscribers of one session, the same work 1,000 times. Confab's event types
are pure views of the bus event (schema/events.py), so an event's result for one
operation and one set of variables is the same for every subscriber. The
subscription resolvers therefore hand each event to the operation's `LiveSink` when
the transport provides one: the first subscriber renders the `next` payload (GraphQL
execution plus JSON) into the event's memo, and every other subscriber only writes
it to its socket, framed with its own operation id.

Everything else keeps Strawberry's path: parsing, validation, authorization,
completion, any result with errors (it is yielded, so Strawberry formats it), and
the legacy graphql-ws protocol, which has no sink.

Both protocols' handlers also guard the connection's app key: when it is revoked
(runtime/key_watch.py), its operations stop and the socket closes with 4403.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
)
from strawberry.subscriptions.protocols.graphql_ws import types as legacy
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import Info

from graphql import DocumentNode, ExecutionResult, execute
from runtime.events import Event
from runtime.key_watch import ConnectionGuard
from schema.context import Context
from schema.execution import ConfabExecutor

_COMPACT = (",", ":")  # Strawberry's encoding: the bytes match its own `next` messages
REVOKED_CLOSE = (4403, "app key revoked")  # the code a bad key gets at connection_init


class LiveSink:
    """Where one subscription operation's results go: its socket, under its id."""

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        operation_id: str,
        variables: dict[str, Any] | None,
    ) -> None:
        self._send_text = send_text
        self._frame_start = '{"id":' + json.dumps(operation_id) + ',"type":"next","payload":'
        self._variables = variables
        self._variables_key = json.dumps(variables, sort_keys=True, default=str)

    async def deliver(
        self, info: Info[Context, None], view: Callable[[Event], object], event: Event
    ) -> bool:
        """Send the result of the event's view; False if it has errors and must take
        Strawberry's path. The view is built only by the subscriber that renders."""
        payload = await self._render(info, view, event)
        if payload is None:
            return False
        await self._send_text(self._frame_start + payload + "}")
        return True

    async def _render(
        self, info: Info[Context, None], view: Callable[[Event], object], event: Event
    ) -> str | None:
        operation = info.operation
        key = ("graphql-next", id(operation), self._variables_key)
        shared = event.derived.get(key)
        # Documents are cached, so equal texts share one operation node; holding the
        # node itself guards against its id being reused by another document.
        if shared is not None and shared[0] is operation:
            return shared[1]  # type: ignore[no-any-return]
        raw = info._raw_info
        outcome = execute(
            raw.schema,
            DocumentNode(definitions=(operation, *raw.fragments.values())),
            root_value=view(event),
            context_value=raw.context,
            variable_values=self._variables,
            operation_name=operation.name.value if operation.name else None,
            executor_class=ConfabExecutor,
        )
        result: ExecutionResult = await outcome if isinstance(outcome, Awaitable) else outcome
        payload = None if result.errors else json.dumps({"data": result.data}, separators=_COMPACT)
        if payload is not None and len(payload) > info.schema.max_response_bytes:  # type: ignore[attr-defined]
            payload = None  # Strawberry's path, where the view refuses it
        event.derived[key] = (operation, payload)
        info.context.runtime.events.stats["rendered"] += 1
        return payload


# Set inside each operation's task, so a resolver finds the sink of its own operation.
LIVE_SINK: ContextVar[LiveSink | None] = ContextVar("confab_live_sink", default=None)


class LiveTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with a `LiveSink` for every operation, closed when its
    key is revoked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_guard = ConnectionGuard(self.context.runtime.apps.key_watch, self._revoked)

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            self.key_guard.release()

    async def handle_message(self, message: Message) -> None:
        if not self.key_guard.revoked:  # closing: nothing more starts
            await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.key_guard.watch(self.context.key_prefix)

    async def _revoked(self) -> None:
        # Operations first, so none writes to a closed socket.
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await self.websocket.close(*REVOKED_CLOSE)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        async def send_text(text: str) -> None:
            if operation.completed:
                return
            assert isinstance(self.websocket, ASGIWebSocketAdapter)
            try:
                await self.websocket.ws.send_text(text)
            except WebSocketDisconnect as exc:
                raise WebSocketDisconnected from exc

        LIVE_SINK.set(LiveSink(send_text, operation.id, operation.variables))
        await super().run_operation(operation)

    async def cleanup_operation(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        await super().cleanup_operation(operation_id)
        if operation is not None and operation.task is not None:
            _cancel_until_done(operation.task)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws protocol, closed when its key is revoked (each
    operation is stopped first, which the protocol answers with `complete`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_guard = ConnectionGuard(self.context.runtime.apps.key_watch, self._revoked)

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            self.key_guard.release()

    async def handle_message(self, message: legacy.OperationMessage) -> None:
        if not self.key_guard.revoked:
            await super().handle_message(message)

    async def handle_connection_init(self, message: legacy.ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.key_guard.watch(self.context.key_prefix)

    async def _revoked(self) -> None:
        await self.cleanup()
        await self.websocket.close(*REVOKED_CLOSE)


def _cancel_until_done(task: asyncio.Task[None], interval: float = 0.05) -> None:
    """Repeat a cancellation until the task ends.

    A cancellation can be lost inside a dependency: when many subscribers connect at
    once and one leaves while its subscription is still being set up (a Redis round
    trip on a freshly opened connection, on Python 3.11), the task carries on as if
    never cancelled and then waits for events forever, holding its subscription and
    the connection's handler. Strawberry cancels once and then awaits the task.
    """
    loop = asyncio.get_running_loop()

    def again() -> None:
        if not task.done():
            task.cancel()
            loop.call_later(interval, again)

    loop.call_later(interval, again)
