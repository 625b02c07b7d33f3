"""A bound on the size of one GraphQL response, checked where the view encodes it.

The cost limit (schema/cost.py) bounds how many fields an operation may resolve, not
how big their values are: 200 messages of 64 KiB each pass it. Strawberry's view
encodes every answer with `encode_json`, for HTTP responses and for each WebSocket,
SSE or multipart message, so the bound is checked there, on the encoded text that
exists anyway (measuring costs one `len`). An answer over the bound is replaced by a
`RESPONSE_TOO_LARGE` error without data, in the same frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schema.build import ConfabSchema

if TYPE_CHECKING:
    from strawberry.asgi import GraphQL

    _View = GraphQL[Any, Any]
else:
    _View = object

CODE = "RESPONSE_TOO_LARGE"


class ResponseSizeLimit(_View):
    """Mix in before Strawberry's view: `class V(ResponseSizeLimit, GraphQL[...])`.

    The bound is the schema's `max_response_bytes` (CONFAB_GRAPHQL_MAX_RESPONSE_BYTES).
    """

    def encode_json(self, data: object) -> str | bytes:
        encoded = super().encode_json(data)
        schema = self.schema
        limit = schema.max_response_bytes if isinstance(schema, ConfabSchema) else None
        # Strawberry's encoder escapes non-ASCII, so a str's length is its size in bytes.
        if limit is None or len(encoded) <= limit:
            return encoded
        return super().encode_json(refusal(data, len(encoded), limit))


def refusal(data: object, size: int, limit: int) -> object:
    """What to send instead of `data`, framed as `data` was."""
    answer: dict[str, object] = {
        "data": None,
        "errors": [
            {
                "message": f"the response is {size} bytes, more than the limit of {limit}: "
                "ask for smaller pages (first/last) or fewer fields",
                "extensions": {"code": CODE, "size": size, "maxSize": limit},
            }
        ],
    }
    if isinstance(data, list):  # a batch: every answer in it
        return [refusal(item, size, limit) for item in data]
    if not isinstance(data, dict):
        return answer
    if "payload" in data:  # a WebSocket or multipart message: the same frame
        payload = data["payload"]
        return {**data, "payload": answer["errors"] if isinstance(payload, list) else answer}
    if isinstance(data.get("extensions"), dict):
        answer["extensions"] = data["extensions"]  # the cost, still true
    return answer
