"""GraphiQL at GET /graphql, served by Confab alone, and browsers on other origins.

Over HTTP (in process, SQLite): the assets are the committed files, byte for byte,
and those are what vendor.json recorded from the npm registry; the page names only
its own URLs; anything but the listed assets is a 404.

In Debian's Chromium (tests/browser.py: headless, every request that would leave
the machine aborted and recorded), against a real server process with the test
apps: the page loads, a query runs, a subscription typed in the editor with the
app key in the Headers tab gets an event of that keyed app, the example
operations open with one click; and a page served from another port queries,
mutates and subscribes across origins. Screenshots go to pytest's tmp_path (their
paths are printed: run with -s to see them).
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphql import parse, validate
from resolvers import confab_schema
from schema.graphiql_page import ASSETS_DIR, OPERATIONS_DIR, SERVED
from server import create_app
from settings import Settings
from tests.browser import TIMEOUT_MS, OfflinePage, Trap, chromium, offline_page
from tests.conftest import new_id, started
from tests.live import wait_for_subscribers
from tests.processes import ROOT, ServerProcess

ASSETS = "/graphql/assets/"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
TOOL_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESULT = ".result-window"

CREATE = "mutation($id: ID) { createSession(id: $id) { id } }"
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id title } }"


# -- over HTTP, in process ---------------------------------------------------------


@pytest.fixture(scope="module")
async def local(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    database = tmp_path_factory.mktemp("graphiql") / "confab.sqlite3"
    application = create_app(Settings(database_url=f"sqlite://{database}", auto_migrate=True))
    async with started(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://confab.test") as http:
            yield http


class Links(HTMLParser):
    """Every URL an HTML page names (src, href), and its inline JSON config."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.config: dict[str, Any] | None = None
        self._in_config = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]
        self._in_config = tag == "script" and values.get("id") == "confab-graphiql-config"

    def handle_data(self, data: str) -> None:
        if self._in_config:
            self.config = json.loads(data)
            self._in_config = False


async def page_links(local: httpx.AsyncClient) -> tuple[httpx.Response, Links]:
    response = await local.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text
    links = Links()
    links.feed(response.text)
    return response, links


async def test_the_page_names_only_its_own_assets(local: httpx.AsyncClient) -> None:
    response, links = await page_links(local)
    assert response.headers["content-type"].startswith("text/html")
    assert "://" not in response.text  # no absolute URL anywhere, config included
    assets = [url for url in links.urls if url.startswith(ASSETS)]
    assert set(links.urls) - set(assets) == {"data:,"}  # the empty favicon
    assert sorted(url.split("?")[0].removeprefix(ASSETS) for url in assets) == sorted(SERVED)
    # What the browser may load is fenced by the page's policy too.
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy
    # Confab's own script and style fetch nothing from anywhere either.
    for name in ("confab-graphiql.js", "confab-graphiql.css"):
        text = (ASSETS_DIR / name).read_text(encoding="utf-8")
        assert "://" not in text, name


async def test_served_assets_are_the_committed_files(local: httpx.AsyncClient) -> None:
    _, links = await page_links(local)
    for url in (url for url in links.urls if url.startswith(ASSETS)):
        name, version = url.removeprefix(ASSETS).split("?v=")
        committed = (ASSETS_DIR / name).read_bytes()
        assert version == hashlib.sha256(committed).hexdigest()[:16]
        plain = await local.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200, name
        assert plain.content == committed, name
        assert "content-encoding" not in plain.headers
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        assert plain.headers["content-type"] == f"{kind}; charset=utf-8"
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert plain.headers["x-content-type-options"] == "nosniff"
        packed = await local.get(url, headers={"Accept-Encoding": "gzip"})
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.content == committed, name  # httpx decodes
        assert len(packed.headers["etag"]) > 2
        assert packed.headers["etag"] != plain.headers["etag"]
        again = await local.get(
            url, headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]}
        )
        assert again.status_code == 304
    # Without the content's version in the URL, a cache must check back.
    unversioned = await local.get(ASSETS + "graphiql.min.js")
    assert unversioned.headers["cache-control"] == "no-cache"


def test_vendored_files_are_what_the_registry_served() -> None:
    """vendor.json (written by scripts/fetch_graphiql.py) matches the committed bytes,
    names the script's pinned versions, and every package's license is committed."""
    manifest = json.loads((ASSETS_DIR / "vendor.json").read_text())
    for name, entry in manifest["files"].items():
        data = (ASSETS_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        assert len(data) == entry["bytes"], name
    spec = importlib.util.spec_from_file_location(
        "fetch_graphiql", ROOT / "scripts" / "fetch_graphiql.py"
    )
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    pinned = {name: version for name, (version, _) in script.PACKAGES.items()}
    assert {name: entry["version"] for name, entry in manifest["packages"].items()} == pinned
    for name, (_version, files) in script.PACKAGES.items():
        assert set(files.values()) <= set(manifest["files"]), name
        assert any(target.startswith("LICENSE") for target in files.values()), name
    vendored = {name for name in SERVED if not name.startswith("confab-")}
    assert vendored <= set(manifest["files"])


@pytest.mark.parametrize(
    "path",
    [
        "index.html",
        "vendor.json",
        "LICENSE.react.txt",
        "graphiql.min.js.map",
        "graphiql.js",
        "nothing.js",
        "..%2Fgraphiql_page.py",
        "%2e%2e%2f%2e%2e%2fserver.py",
        "a/graphiql.min.js",
        "",
    ],
)
async def test_only_the_listed_assets_are_served(local: httpx.AsyncClient, path: str) -> None:
    response = await local.get(ASSETS + path)
    assert response.status_code == 404, (path, response.text[:200])


async def test_assets_are_read_only(local: httpx.AsyncClient) -> None:
    assert (await local.post(ASSETS + "graphiql.min.js", content=b"x")).status_code == 405


async def test_graphql_over_get_still_answers_json(local: httpx.AsyncClient) -> None:
    response = await local.get("/graphql", params={"query": "{ __typename }"})
    assert response.json()["data"] == {"__typename": "Query"}


async def test_the_examples_travel_in_the_page_and_run_alone(local: httpx.AsyncClient) -> None:
    _, links = await page_links(local)
    assert links.config is not None
    assert links.config["endpoint"] == "/graphql"
    files = {example["file"]: example for example in links.config["examples"]}
    assert sorted(files) == sorted(path.name for path in OPERATIONS_DIR.glob("*.graphql"))
    schema = confab_schema(Settings())._schema
    names = []
    for name, example in files.items():
        assert example["document"] == (OPERATIONS_DIR / name).read_text(encoding="utf-8")
        for operation in example["operations"]:
            names.append(operation["name"])
            document = parse(operation["document"])  # with the fragments it spreads
            assert not validate(schema, document), operation["name"]
            if operation["variables"]:
                assert isinstance(json.loads(operation["variables"]), dict)
    assert {"SessionEvents", "RenameSession", "Session", "AppsAndModels"} <= set(names)
    session = next(op for op in files["sessions.graphql"]["operations"] if op["name"] == "Session")
    assert "fragment SessionSummary" in session["document"]
    assert json.loads(session["variables"]) == {"id": ""}


# -- in a browser, against a real server ---------------------------------------------

OTHER_ORIGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Another origin</title>
<link rel="icon" href="data:,"></head>
<body><h1>A page on another origin</h1><pre id="log"></pre>
<script>
const CONFAB = "__CONFAB__";
const SOCKET = CONFAB.replace(/^http/, "ws");
window.events = [];
function log(line) { document.getElementById("log").textContent += line + "\\n"; }

async function graphql(key, query, variables) {
  const response = await fetch(CONFAB, {
    method: "POST",
    headers: {"Content-Type": "application/json", "AOMI-APP-KEY": key},
    body: JSON.stringify({query, variables}),
  });
  const body = await response.json();
  log(`POST ${response.status} ${JSON.stringify(body.data || body.errors)}`);
  return {status: response.status, body};
}

function subscribe(key, query, variables) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(SOCKET, "graphql-transport-ws");
    socket.onopen = () => socket.send(JSON.stringify(
      {type: "connection_init", payload: {appKey: key}}));
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "connection_ack") {
        socket.send(JSON.stringify({id: "1", type: "subscribe", payload: {query, variables}}));
        log("subscribed");
        resolve("subscribed");
      } else if (frame.type === "next" || frame.type === "error") {
        window.events.push(frame);
        log(`${frame.type} ${JSON.stringify(frame.payload)}`);
      }
    };
    socket.onerror = () => log("the WebSocket failed");
    socket.onclose = (event) => {
      log(`closed ${event.code}`);
      reject(new Error(`the WebSocket closed with ${event.code} ${event.reason}`));
    };
  });
}
</script></body></html>
"""


class OtherOrigin:
    """A static page on its own port: another origin than the Confab server's."""

    def __init__(self) -> None:
        self.page = ""
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.page.encode() if self.path == "/" else b"not here"
                self.send_response(200 if self.path == "/" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"

    @classmethod
    def serving(cls) -> Iterator[OtherOrigin]:
        site = cls()
        thread = threading.Thread(target=site._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield site
        finally:
            site._server.shutdown()
            site._server.server_close()
            thread.join(5)


@pytest.fixture(scope="module")
def other_origin() -> Iterator[OtherOrigin]:
    yield from OtherOrigin.serving()


@pytest.fixture(scope="module")
def confab(
    live_env: dict[str, str],
    other_origin: OtherOrigin,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """A real server (PostgreSQL, Redis, the test apps) that lets `other_origin` in:
    CORS for its requests, and its WebSocket handshakes."""
    env = {
        **live_env,
        "CONFAB_CORS_ORIGINS": other_origin.origin,
        "CONFAB_ALLOWED_ORIGINS": other_origin.origin,
    }
    process = ServerProcess(env, tmp_path_factory.mktemp("graphiql-server") / "server.log")
    try:
        process.wait_ready()
        other_origin.page = OTHER_ORIGIN_PAGE.replace("__CONFAB__", f"{process.url}/graphql")
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def trap() -> Iterator[Trap]:
    with Trap().running() as running:
        yield running


@pytest.fixture(scope="module")
async def browser(trap: Trap) -> AsyncIterator[Any]:
    async with chromium(trap) as launched:
        yield launched


@pytest.fixture
async def offline(browser: Any, trap: Trap, tmp_path: Path) -> AsyncIterator[OfflinePage]:
    """A fresh page whose requests off this machine are aborted and recorded."""
    async with offline_page(browser, tmp_path) as guard:
        yield guard
    assert guard.external() == []
    assert trap.foreign() == []


async def subscribers(server: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=5) as http:
        status = (await http.get(f"{server.url}/readyz")).json()
    return int(status["events"]["subscribers"])


async def post(server: ServerProcess, key: str, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{server.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"AOMI-APP-KEY": key},
        )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def open_graphiql(guard: OfflinePage, server: ServerProcess) -> None:
    from playwright.async_api import expect

    await guard.page.goto(f"{server.url}/graphql")
    await expect(guard.page.locator(QUERY_EDITOR)).to_be_visible(timeout=TIMEOUT_MS)
    await expect(guard.page.locator(".graphiql-plugin .confab-examples")).to_be_visible()


async def type_into(
    guard: OfflinePage, selector: str, text: str, operation: str | None = None
) -> None:
    """Replace an editor's text the way a user does: click, select all, type.

    In the query editor, GraphiQL learns the operation's name (which it sends) a
    moment after the text changes; `operation` waits until it has.
    """
    editor = guard.page.locator(selector)
    await editor.click()
    await guard.page.keyboard.press("Control+A")
    await guard.page.keyboard.press("Delete")
    await guard.page.keyboard.insert_text(text)
    assert await editor.evaluate("node => node.CodeMirror.getValue()") == text
    if operation is not None:
        await selected(guard, operation)


async def selected(guard: OfflinePage, operation: str) -> None:
    """Until GraphiQL has parsed the query editor and selected `operation`."""
    await guard.page.wait_for_function(
        "([node, name]) => node.CodeMirror.operationName === name",
        arg=[await guard.page.locator(QUERY_EDITOR).element_handle(), operation],
    )


async def show_headers(guard: OfflinePage) -> None:
    await guard.page.locator('.graphiql-editor-tools button[data-name="headers"]').click()


async def run(guard: OfflinePage) -> None:
    await guard.page.locator(".graphiql-execute-button").click()


async def test_the_page_loads_offline(
    confab: ServerProcess, offline: OfflinePage, trap: Trap
) -> None:
    await open_graphiql(offline, confab)
    await offline.screenshot("graphiql-loaded")
    assert f"{confab.url}/graphql/assets/graphiql.min.js" in " ".join(offline.requests)
    assert offline.errors == []
    assert offline.external() == []
    assert trap.foreign() == []


FETCH = """url => fetch(url).then(() => "fetched", (error) => "refused: " + error)"""


async def test_the_fences_stop_and_record_what_would_leave(
    offline: OfflinePage, browser: Any, trap: Trap, tmp_path: Path
) -> None:
    """tests/browser.py's fences: a page asking a CDN gets nothing, and it shows."""
    cdn = "https://unpkg.com/graphiql@3.8.3/graphiql.min.js"
    await offline.page.goto("about:blank")
    assert (await offline.page.evaluate(FETCH, cdn)).startswith("refused")
    assert offline.blocked == [cdn]  # the route stopped it
    offline.blocked.clear()
    offline.requests.clear()
    # Without the route (as in the cross-origin test) the proxy trap stops it.
    async with offline_page(browser, tmp_path, intercept=False) as bare:
        await bare.page.goto("about:blank")
        assert (await bare.page.evaluate(FETCH, "https://cdn.example/x.js")).startswith("refused")
        assert bare.external() == ["https://cdn.example/x.js"]
    assert trap.foreign() == ["CONNECT cdn.example:443 HTTP/1.1"]
    trap.attempts.clear()


async def test_a_query_runs_with_the_key_from_the_headers_tab(
    confab: ServerProcess, offline: OfflinePage, alpha_cli_key: str
) -> None:
    from playwright.async_api import expect

    await open_graphiql(offline, confab)
    await type_into(offline, QUERY_EDITOR, "query Mine {\n  apps { name }\n  models\n}", "Mine")
    await show_headers(offline)
    await type_into(offline, TOOL_EDITOR, json.dumps({"AOMI-APP-KEY": alpha_cli_key}, indent=2))
    await run(offline)
    result = offline.page.locator(RESULT)
    await expect(result).to_contain_text('"alpha"', timeout=TIMEOUT_MS)
    await expect(result).to_contain_text('"builtin-large"')  # alpha's models: the key arrived
    await offline.screenshot("graphiql-query")
    assert offline.errors == []


async def test_a_subscription_gets_the_keyed_apps_events(
    confab: ServerProcess, offline: OfflinePage, alpha_cli_key: str
) -> None:
    from playwright.async_api import WebSocket, expect

    session_id = new_id()
    await post(confab, alpha_cli_key, CREATE, id=session_id)
    init_payloads: list[Any] = []

    def watch(socket: WebSocket) -> None:
        def sent(frame: str | bytes) -> None:
            message = json.loads(frame)
            if message.get("type") == "connection_init":
                init_payloads.append(message.get("payload"))

        socket.on("framesent", sent)

    offline.page.on("websocket", watch)
    await open_graphiql(offline, confab)
    await type_into(
        offline,
        QUERY_EDITOR,
        f'subscription Live {{\n  sessionEvents(sessionId: "{session_id}") '
        "{ type app sessionId data }\n}",
        "Live",
    )
    result = offline.page.locator(RESULT)
    # Without a key this is the default app, to which alpha's session does not exist.
    await run(offline)
    await expect(result).to_contain_text("NOT_FOUND", timeout=TIMEOUT_MS)

    # A key Confab does not know: the connection is refused, and GraphiQL says so.
    await show_headers(offline)
    await type_into(offline, TOOL_EDITOR, json.dumps({"X-API-Key": "cfb_unknown"}))
    await run(offline)
    await expect(result).to_contain_text("4403", timeout=TIMEOUT_MS)
    await offline.screenshot("graphiql-refused-key")

    headers = {"Authorization": f"Bearer {alpha_cli_key}", "X-Confab-App": "alpha"}
    await type_into(offline, TOOL_EDITOR, json.dumps(headers, indent=2))
    before = await subscribers(confab)
    await run(offline)
    await wait_for_subscribers(confab, before + 1, timeout=TIMEOUT_MS / 1000)
    await post(confab, alpha_cli_key, RENAME, id=session_id, t="Renamed for GraphiQL")
    await expect(result).to_contain_text("title_changed", timeout=TIMEOUT_MS)
    await expect(result).to_contain_text('"app": "alpha"')
    await expect(result).to_contain_text("Renamed for GraphiQL")
    await offline.screenshot("graphiql-subscription")
    # What Confab reads from connection_init: the typed headers, translated.
    assert init_payloads == [
        {},
        {"appKey": "cfb_unknown"},
        {"appKey": alpha_cli_key, "app": "alpha"},
    ]
    assert all(url == f"ws://127.0.0.1:{confab.port}/graphql" for url in offline.sockets)


async def test_the_examples_are_one_click_away(
    confab: ServerProcess, offline: OfflinePage, alpha_cli_key: str
) -> None:
    from playwright.async_api import expect

    await open_graphiql(offline, confab)
    page = offline.page
    # Every operation of graphql/operations/ is listed in the panel, open on arrival.
    listed = await page.locator(".confab-examples button[data-operation]").all_inner_texts()
    assert len(listed) >= 20
    await show_headers(offline)
    headers = json.dumps({"AOMI-APP-KEY": alpha_cli_key}, indent=2)
    await type_into(offline, TOOL_EDITOR, headers)

    await page.locator('.confab-examples button[data-operation="RenameSession"]').click()
    await expect(page.locator(".graphiql-tab")).to_have_count(2)
    query = page.locator(QUERY_EDITOR)
    await expect(query).to_contain_text("mutation RenameSession")
    assert await page.locator(TOOL_EDITOR).evaluate("n => n.CodeMirror.getValue()") == headers
    await page.locator('.graphiql-editor-tools button[data-name="variables"]').click()
    variables = await page.locator(TOOL_EDITOR).evaluate("n => n.CodeMirror.getValue()")
    assert json.loads(variables) == {"id": "", "title": ""}

    # An example runs as it opened, with the headers it inherited.
    await page.locator('.confab-examples button[data-operation="AppsAndModels"]').click()
    await expect(page.locator(".graphiql-tab")).to_have_count(3)
    await expect(query).to_contain_text("query AppsAndModels")
    await selected(offline, "AppsAndModels")
    await run(offline)
    await expect(page.locator(RESULT)).to_contain_text('"builtin-large"', timeout=TIMEOUT_MS)

    await page.locator('.confab-examples button[data-file="subscriptions.graphql"]').click()
    await expect(page.locator(".graphiql-tab")).to_have_count(4)
    await expect(query).to_contain_text("subscription SessionEvents")
    await selected(offline, "SessionEvents")
    await expect(page.locator(".graphiql-tab-active")).to_contain_text("SessionEvents")
    await offline.screenshot("graphiql-examples")
    assert offline.errors == []


async def test_a_page_on_another_origin_queries_mutates_and_subscribes(
    confab: ServerProcess,
    other_origin: OtherOrigin,
    browser: Any,
    trap: Trap,
    alpha_cli_key: str,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    # No request interception here: while it is on, Playwright answers CORS
    # preflights itself, and this test is about the server's answers. The proxy
    # trap still catches anything that would leave the machine.
    async with offline_page(browser, tmp_path, intercept=False) as guard:
        page = guard.page
        await page.goto(other_origin.origin + "/")
        await expect(page.locator("h1")).to_have_text("A page on another origin")
        query = await page.evaluate(
            "key => graphql(key, '{ apps { name } models }', {})", alpha_cli_key
        )
        assert query["status"] == 200, query
        assert "alpha" in [app["name"] for app in query["body"]["data"]["apps"]]

        session_id = new_id()
        created = await page.evaluate(
            "([key, query, id]) => graphql(key, query, {id})", [alpha_cli_key, CREATE, session_id]
        )
        assert created["body"]["data"]["createSession"]["id"] == session_id, created

        before = await subscribers(confab)
        subscription = "subscription($id: ID!) { sessionEvents(sessionId: $id) { type app data } }"
        await page.evaluate(
            "([key, query, id]) => subscribe(key, query, {id})",
            [alpha_cli_key, subscription, session_id],
        )
        await wait_for_subscribers(confab, before + 1, timeout=TIMEOUT_MS / 1000)
        renamed = await page.evaluate(
            "([key, query, id]) => graphql(key, query, {id, t: 'From another origin'})",
            [alpha_cli_key, RENAME, session_id],
        )
        assert renamed["body"]["data"]["renameSession"]["title"] == "From another origin"
        await page.wait_for_function("window.events.length > 0", timeout=TIMEOUT_MS)
        [event] = await page.evaluate("window.events")
        assert event["type"] == "next", event
        live = event["payload"]["data"]["sessionEvents"]
        assert live["type"] == "title_changed"
        assert live["app"] == "alpha"
        assert live["data"]["new_title"] == "From another origin"
        await guard.screenshot("other-origin")

        # The browser really asked the server (no Playwright stand-in): a preflight
        # for the JSON POST with a key header, answered by Confab.
        assert re.search(r"OPTIONS /graphql 20\d ", confab.log())  # Confab's access line
        assert guard.sockets == [f"ws://127.0.0.1:{confab.port}/graphql"]
        assert guard.external() == []
        assert trap.foreign() == []
        assert [error for error in guard.errors if "favicon" not in error] == []
