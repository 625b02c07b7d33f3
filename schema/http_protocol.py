"""GraphQL over HTTP, by the GraphQL-over-HTTP spec: what a request asks for, and
how its answer is framed.

- Media types: `application/graphql-response+json` when the `Accept` header prefers
  it; otherwise `application/json` (also for `*/*`, no `Accept`, or nothing
  acceptable), the legacy type older clients read.
- Request errors (the request could not be read: bad JSON, a wrong content type,
  no query, parameters of the wrong type, a batch over the limit) are `4xx` with
  `{"errors": [...]}` and no `data`, whatever the media type.
- Document errors (syntax, validation, variables, cost, a document outside the
  trusted set): under `application/graphql-response+json` `400` and no `data`;
  under `application/json` `200` with `"data": null`, as before.
- Batching: a JSON array of operations (at most `CONFAB_GRAPHQL_BATCH_LIMIT`, 0 turns
  it off) answers an array, each operation with its own limits and cost; an item
  that is not an operation gets its own error, the others still run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLHTTPResponse

from runtime.memo import Memo
from schema.errors import BAD_REQUEST, RequestErrors

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
MULTIPART_BOUNDARY = "graphql"  # the one Strawberry's multipart transport writes

_MEDIA_TYPES = {JSON: JSON, GRAPHQL_RESPONSE: GRAPHQL_RESPONSE + "; charset=utf-8"}


@dataclass(frozen=True, slots=True)
class Accepts:
    """What an `Accept` header allows the answer to be."""

    media_type: str  # for JSON answers: JSON or GRAPHQL_RESPONSE
    multipart_subscriptions: bool  # multipart/mixed;subscriptionSpec=1.0

    @property
    def content_type(self) -> str:
        return _MEDIA_TYPES[self.media_type]


_DEFAULT = Accepts(JSON, multipart_subscriptions=False)
# Clients send a handful of distinct Accept headers; each is parsed once.
_ACCEPTS: Memo[str, Accepts] = Memo(256)


def negotiate(accept: str | None) -> Accepts:
    if not accept:
        return _DEFAULT
    if len(accept) > 1024:  # not from any real client: no memo entry for it
        return _parse_accept(accept)
    return _ACCEPTS.get(accept, lambda: _parse_accept(accept))


def _parse_accept(accept: str) -> Accepts:
    graphql_q = json_q = 0.0
    multipart = False
    for media_type, params in _media_ranges(accept):
        q = _quality(params)
        if media_type == GRAPHQL_RESPONSE:
            graphql_q = max(graphql_q, q)
        elif media_type in (JSON, "application/*", "*/*"):
            json_q = max(json_q, q)
        elif media_type == "multipart/mixed" and q > 0:
            spec = params.get("subscriptionspec", "")
            boundary = params.get("boundary", MULTIPART_BOUNDARY)
            multipart = multipart or (spec.startswith("1.0") and boundary == MULTIPART_BOUNDARY)
    media = GRAPHQL_RESPONSE if graphql_q > 0 and graphql_q >= json_q else JSON
    return Accepts(media, multipart)


def _media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    """`type/subtype` (lower case) and parameters (names lower case, values unquoted)
    of each media range; commas and semicolons inside quotes do not split."""
    ranges: list[tuple[str, dict[str, str]]] = []
    for part in _split(header, ","):
        pieces = _split(part, ";")
        if not pieces or not pieces[0].strip():
            continue
        params: dict[str, str] = {}
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        ranges.append((pieces[0].strip().lower(), params))
    return ranges


def _split(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    start, quoted = 0, False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _quality(params: Mapping[str, str]) -> float:
    try:
        return min(max(float(params.get("q", "1")), 0.0), 1.0)
    except ValueError:
        return 0.0


# -- requests --------------------------------------------------------------------------


@dataclass(slots=True)
class Params:
    """One operation as a request sends it."""

    query: str | None
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None

    @property
    def persisted(self) -> bool:
        return self.extensions is not None and "persistedQuery" in self.extensions


class BadRequest(Exception):
    """The request cannot be read as GraphQL; answered with `status`, no `data`."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: str = BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
        **extensions: object,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code
        self.headers = dict(headers or {})
        self.extensions = extensions

    def body(self) -> dict[str, object]:
        error = {"message": self.message, "extensions": {"code": self.code, **self.extensions}}
        return {"errors": [error]}


def params_from_query_string(query: QueryParams) -> Params:
    """A GET request's operation (`variables` and `extensions` are JSON texts)."""
    return params_from_object(
        {
            "query": query.get("query"),
            "operationName": query.get("operationName") or None,
            "variables": _json_param(query, "variables"),
            "extensions": _json_param(query, "extensions"),
        }
    )


def _json_param(query: QueryParams, name: str) -> object:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest(f"the {name} parameter is not valid JSON") from None


def params_from_object(data: object) -> Params:
    if not isinstance(data, dict):
        raise BadRequest("an operation must be a JSON object {query, variables, ...}")
    query, variables = data.get("query"), data.get("variables")
    name, extensions = data.get("operationName"), data.get("extensions")
    if query is not None and not isinstance(query, str):
        raise BadRequest("query must be a string")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("variables must be an object")
    if name is not None and not isinstance(name, str):
        raise BadRequest("operationName must be a string")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequest("extensions must be an object")
    params = Params(query, variables, name, extensions)
    if not query and not params.persisted:
        raise BadRequest("no GraphQL query in the request: send {query} (or a persisted hash)")
    return params


async def params_from_body(
    request: Request, batch_limit: int
) -> Params | list[Params | BadRequest]:
    """A POST request's operation, or its batch (each item parsed on its own)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != JSON:
        raise BadRequest(
            f"POST bodies are {JSON}; this one is {media_type or 'of no stated type'}",
            status=415,
        )
    body = await request.body()
    if not body.strip():
        raise BadRequest("the request body is empty: send {query, variables, operationName}")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(data, list):
        return params_from_object(data)
    if batch_limit <= 0:
        raise BadRequest(
            "batching is off (CONFAB_GRAPHQL_BATCH_LIMIT=0): send one operation per request",
            code=BATCH_TOO_LARGE,
            maxOperations=0,
        )
    if not data:
        raise BadRequest("an empty batch: send at least one operation")
    if len(data) > batch_limit:
        raise BadRequest(
            f"a batch holds at most {batch_limit} operations; this one has {len(data)}",
            code=BATCH_TOO_LARGE,
            maxOperations=batch_limit,
        )
    items: list[Params | BadRequest] = []
    for item in data:
        try:
            items.append(params_from_object(item))
        except BadRequest as bad:
            items.append(bad)
    return items


# -- answers ---------------------------------------------------------------------------


def answer_body(
    formatted: GraphQLHTTPResponse, result: object, accepts: Accepts
) -> GraphQLHTTPResponse:
    """The JSON of one result: a request error has no `data` entry, except a document
    error under `application/json`, which keeps the `"data": null` it always had."""
    if isinstance(result, RequestErrors) and (
        result.status is not None or accepts.media_type == GRAPHQL_RESPONSE
    ):
        formatted.pop("data", None)
    return formatted


def answer_status(result: object, accepts: Accepts) -> int:
    if not isinstance(result, RequestErrors):
        return 200
    if result.status is not None:
        return result.status
    return 400 if accepts.media_type == GRAPHQL_RESPONSE else 200


def json_response(
    encoded: str | bytes,
    status: int,
    accepts: Accepts,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(encoded, status_code=status, media_type=accepts.content_type, headers=headers)
