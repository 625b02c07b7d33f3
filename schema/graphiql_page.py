"""GraphiQL at `GET /graphql`, served entirely by Confab (nothing from a CDN).

The page (`graphiql/index.html`) loads GraphiQL 3's UMD build, React 18 and the
graphql-ws client from `/graphql/assets/<name>` (vendored, unchanged, by
scripts/fetch_graphiql.py; `graphiql/vendor.json` says where each came from) and
Confab's own script (`graphiql/confab-graphiql.js`): a fetcher that sends the
Headers tab's key with queries and mutations and, for subscriptions, puts it in the
`connection_init` payload (`{"appKey": ..., "app": ...}`, what schema/view.py reads),
and an Examples panel with the operations of `graphql/operations/`, which travel in
the page itself as JSON.

Assets are served only by name from a fixed list (anything else is a 404, so no
path reaches the file system), gzip-compressed when the client accepts it, with an
ETag, and cached for a year when asked for with the `v` the page puts in their URL
(their content hash). The page carries a Content-Security-Policy that allows only
its own origin, so GraphiQL cannot reach anything else either.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from graphql import (
    DefinitionNode,
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    TypeNode,
    parse,
)

ASSETS_DIR = Path(__file__).resolve().parent / "graphiql"
OPERATIONS_DIR = Path(__file__).resolve().parent.parent / "graphql" / "operations"

# Every file a browser may ask for, in the order the page loads them. Nothing else
# under ASSETS_DIR (the template, licenses, vendor.json) is served.
SERVED = (
    "graphiql.min.css",
    "confab-graphiql.css",
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphql-ws.min.js",
    "confab-graphiql.js",
)
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"

PAGE_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # React and CodeMirror set inline styles; GraphiQL adds <style> elements.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        # 'self' covers the same host's ws:// and wss:// (subscriptions).
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    )
)

WELCOME = """\
# Confab GraphiQL
#
# App key: in the Headers tab, as
#   {"AOMI-APP-KEY": "cfb_..."}
# (or X-API-Key, or Authorization: Bearer ...;
# X-Confab-App picks one of the key's apps).
# Queries and mutations send it as a header,
# subscriptions in their connection_init.
# No key: the default app.
#
# Examples (the list icon on the left): the
# operations of graphql/operations/, one click
# each, in a new tab that keeps your headers.
#
# Run: Ctrl-Enter. Autocomplete: Ctrl-Space.

query AppsAndModels {
  apps { name displayName models }
  models
}
"""


@dataclass
class Asset:
    name: str
    body: bytes
    content_type: str
    version: str = field(init=False)
    _gzipped: bytes | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.version = hashlib.sha256(self.body).hexdigest()[:16]

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


@functools.cache
def assets() -> dict[str, Asset]:
    return {
        name: Asset(name, (ASSETS_DIR / name).read_bytes(), CONTENT_TYPES[Path(name).suffix])
        for name in SERVED
    }


async def graphiql_asset(request: Request) -> Response:
    """`GET /graphql/assets/{name}`: one of the page's files, or 404."""
    asset = assets().get(request.path_params["name"])
    if asset is None:
        raise HTTPException(404, "Not Found")
    compress = "gzip" in request.headers.get("accept-encoding", "").lower()
    etag = f'"{asset.version}-gzip"' if compress else asset.etag
    headers = {
        "ETag": etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    # Long-lived only under the URL that names this content.
    fresh = request.query_params.get("v") == asset.version
    headers["Cache-Control"] = IMMUTABLE if fresh else "no-cache"
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if compress:
        body = await run_in_threadpool(asset.gzipped)  # the first time: ~0.1 s for GraphiQL
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.content_type, headers=headers)


def graphiql_page(request: Request) -> HTMLResponse:
    """The GraphiQL page for the endpoint at the request's path."""
    return HTMLResponse(
        _rendered(request.url.path.rstrip("/") or "/graphql"),
        headers={
            "Content-Security-Policy": PAGE_POLICY,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


@functools.lru_cache(maxsize=8)
def _rendered(endpoint: str) -> str:
    template = (ASSETS_DIR / "index.html").read_text(encoding="utf-8")
    served = assets()

    def asset_url(match: re.Match[str]) -> str:
        asset = served[match.group(1)]
        return html.escape(f"{endpoint}/assets/{asset.name}?v={asset.version}")

    config = {
        "endpoint": endpoint,
        "welcome": WELCOME,
        "examples": example_operations(),
    }
    page = re.sub(r"\{\{asset:([\w.-]+)\}\}", asset_url, template)
    return page.replace("{{config}}", script_json(config))


def script_json(value: object) -> str:
    """JSON that cannot end the <script> element it sits in."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- the example operations -------------------------------------------------------


def example_operations(directory: Path = OPERATIONS_DIR) -> list[dict[str, Any]]:
    """Each `*.graphql` file, whole and split into its named operations.

    An operation's document is its own text with the comment just above it and the
    fragments it spreads (transitively), so it runs on its own. Without the
    directory (an install without the source tree) there are no examples.
    """
    if not directory.is_dir():
        return []
    files = []
    for path in sorted(directory.glob("*.graphql")):
        source = path.read_text(encoding="utf-8")
        try:
            document = parse(source)
        except GraphQLError:
            continue  # tests/test_schema_export.py keeps them valid
        operations = [
            {
                "name": node.name.value,
                "type": node.operation.value,
                "document": _standalone(source, document, node),
                "variables": _variables_skeleton(node),
            }
            for node in document.definitions
            if isinstance(node, OperationDefinitionNode) and node.name is not None
        ]
        files.append({"file": path.name, "document": source, "operations": operations})
    return files


def _standalone(source: str, document: DocumentNode, operation: OperationDefinitionNode) -> str:
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    needed: list[DefinitionNode] = [operation]
    seen: set[str] = set()
    index = 0
    while index < len(needed):
        for name in _spreads(needed[index]):
            if name not in seen and name in fragments:
                seen.add(name)
                needed.append(fragments[name])
        index += 1
    return "\n\n".join(_text_with_comment(source, node) for node in needed) + "\n"


def _spreads(node: object) -> Iterator[str]:
    if isinstance(node, FragmentSpreadNode):
        yield node.name.value
    selection_set = getattr(node, "selection_set", None)
    for selection in selection_set.selections if selection_set is not None else ():
        yield from _spreads(selection)


def _text_with_comment(source: str, node: DefinitionNode) -> str:
    assert node.loc is not None
    text = source[node.loc.start : node.loc.end]
    lines = source[: node.loc.start].splitlines()
    comment: list[str] = []
    while lines and lines[-1].lstrip().startswith("#"):
        comment.insert(0, lines.pop())
    return "\n".join([*comment, text])


def _variables_skeleton(operation: OperationDefinitionNode) -> str:
    """`{"name": <placeholder>}` for each required variable without a default."""
    values = {
        definition.variable.name.value: _placeholder(definition.type)
        for definition in operation.variable_definitions or ()
        if isinstance(definition.type, NonNullTypeNode) and definition.default_value is None
    }
    return json.dumps(values, indent=2) if values else ""


def _placeholder(type_node: TypeNode) -> object:
    if isinstance(type_node, NonNullTypeNode):
        return _placeholder(type_node.type)
    if isinstance(type_node, ListTypeNode):
        return []
    assert isinstance(type_node, NamedTypeNode)
    return {"Int": 0, "Float": 0, "Boolean": False, "JSON": {}}.get(type_node.name.value, "")
