"""WebSocket messages nested too deep are refused before the app parses them.

The server bounds a message's size (`ws_max_size`: larger closes with 1009); a
message within it can still nest deep enough to make `json.loads` raise
`RecursionError` in the GraphQL WebSocket handler, which drops the connection
with a traceback. Here such a message closes the socket with 4400, the code
graphql-transport-ws gives a message it cannot accept, and the app sees the
client leave.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Send

from edge.json_depth import nests_deeper_than

INVALID_MESSAGE = 4400


class DepthCheckedReceive:
    """The app's `receive` on a WebSocket: the server's, minus deep messages."""

    __slots__ = ("_depth", "_reason", "_receive", "_send")

    def __init__(self, receive: Receive, send: Send, depth: int) -> None:
        self._receive = receive
        self._send = send
        self._depth = depth
        self._reason = f"JSON nested deeper than {depth} levels"

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] != "websocket.receive":
            return message
        text: str | None = message.get("text")
        if text is not None:
            # Most messages have a handful of brackets: counted, not encoded.
            if text.count("[") + text.count("{") <= self._depth:
                return message
            payload = text.encode()
        else:
            payload = message.get("bytes") or b""
        if not nests_deeper_than(payload, self._depth):
            return message
        await self._send(
            {"type": "websocket.close", "code": INVALID_MESSAGE, "reason": self._reason}
        )
        return {"type": "websocket.disconnect", "code": INVALID_MESSAGE}
