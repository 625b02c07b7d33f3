"""One CORS policy for every HTTP route, as a browser meets it on real server processes.

The module's server runs the default policy (`CONFAB_CORS_ORIGINS=*`); a second one,
embedded (SQLite), lists two origins. A browser preflights a cross-origin request that
sends an app key or JSON, then reads the answer only if it carries the right headers:
those are what these tests check, on `/graphql`, `/api`, `/healthz`, a 404 and the
edge's 413.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from edge.cors import CorsPolicy
from tests.conftest import new_id
from tests.processes import ServerProcess, running

PAGE = "https://app.example"
LISTED = ("https://a.example", "https://b.example")
# Everything a frontend sends: keys, app selector, JSON, SSE resume, REST identity,
# graphql-sse's token, tracing.
SENT_HEADERS = [
    "aomi-app-key",
    "x-api-key",
    "authorization",
    "x-confab-app",
    "content-type",
    "accept",
    "last-event-id",
    "x-session-id",
    "x-thread-id",
    "x-graphql-event-stream-token",
    "x-request-id",
]


def preflight(
    http: httpx.Client, path: str, origin: str, method: str = "POST", headers: str = ""
) -> httpx.Response:
    return http.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers or ", ".join(SENT_HEADERS),
        },
    )


def listed(value: str | None) -> list[str]:
    return [item.strip().lower() for item in (value or "").split(",") if item.strip()]


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def listing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cors")
    env = {
        "DATABASE_URL": f"sqlite://{root / 'confab.sqlite3'}",
        "CONFAB_EVENT_BUS": "memory://",
        "CONFAB_CORS_ORIGINS": ", ".join(LISTED),
        "CONFAB_GRAPHQL_MAX_BODY_BYTES": "1000",
    }
    with running(env, root / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def listing(listing_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=listing_server.url, timeout=10) as client:
        yield client


# -- the default: any origin, never with credentials ------------------------------------


@pytest.mark.parametrize("path", ["/graphql", "/api/chat", "/api/sessions/x", "/healthz"])
def test_a_preflight_anywhere_allows_every_header_a_frontend_sends(
    http: httpx.Client, path: str
) -> None:
    response = preflight(http, path, PAGE)
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    methods = listed(response.headers["access-control-allow-methods"])
    assert {"get", "post", "put", "patch", "delete", "options"} <= set(methods)
    assert set(SENT_HEADERS) <= set(listed(response.headers["access-control-allow-headers"]))
    assert int(response.headers["access-control-max-age"]) > 0


def test_graphql_answers_carry_the_header(http: httpx.Client, alpha_cli_key: str) -> None:
    headers = {"Origin": PAGE, "AOMI-APP-KEY": alpha_cli_key}
    answer = http.post("/graphql", json={"query": "{ apps { name } }"}, headers=headers)
    assert answer.status_code == 200
    assert {"name": "alpha"} in answer.json()["data"]["apps"]
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
    assert "retry-after" in listed(answer.headers["access-control-expose-headers"])
    # A request error and a GET too.
    bad = http.post(
        "/graphql", content=b"{", headers={**headers, "Content-Type": "application/json"}
    )
    assert bad.status_code == 400
    assert bad.headers["access-control-allow-origin"] == "*"
    got = http.get("/graphql", params={"query": "{ __typename }"}, headers=headers)
    assert got.json()["data"] == {"__typename": "Query"}
    assert got.headers["access-control-allow-origin"] == "*"


def test_rest_health_and_unknown_paths_carry_the_same_header(http: httpx.Client) -> None:
    origin = {"Origin": PAGE}
    state = http.get("/api/state", headers={**origin, "X-Session-Id": new_id()})
    assert state.status_code == 200
    for response in (
        state,
        http.get("/healthz", headers=origin),
        http.get("/api/no-such-endpoint", headers=origin),
        http.get("/no/such/path", headers=origin),
    ):
        assert response.headers["access-control-allow-origin"] == "*", response.url
        assert "access-control-allow-credentials" not in response.headers


def test_a_cache_in_front_is_never_told_a_wrong_origin(http: httpx.Client) -> None:
    """With `*`, answers to requests without `Origin` say `*` too: what a CDN caches
    from them serves every page."""
    answer = http.get("/graphql", params={"query": "{ __typename }"})
    assert answer.headers["access-control-allow-origin"] == "*"


def test_the_rest_contract_preflight_still_passes(http: httpx.Client) -> None:
    response = preflight(http, "/api/updates", PAGE, "GET", "X-Session-Id, Last-Event-ID, Accept")
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] in ("*", PAGE)


# -- a list of origins: echoed, with credentials, and Vary ------------------------------


def test_a_listed_origin_is_echoed_with_credentials(listing: httpx.Client) -> None:
    for origin in LISTED:
        response = preflight(listing, "/graphql", origin)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "origin" in listed(response.headers["vary"])
        assert set(SENT_HEADERS) <= set(listed(response.headers["access-control-allow-headers"]))

        answer = listing.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin}
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == origin
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert listed(answer.headers["vary"]) == ["origin"]

        rest = listing.get("/api/state", headers={"Origin": origin, "X-Session-Id": new_id()})
        assert rest.headers["access-control-allow-origin"] == origin


def test_an_unlisted_origin_is_refused_and_told_nothing(listing: httpx.Client) -> None:
    response = preflight(listing, "/graphql", "https://evil.example")
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert "CONFAB_CORS_ORIGINS" in response.json()["error"]

    answer = listing.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Origin": "https://evil.example"}
    )
    # The server answers (CORS is the browser's rule), but the browser hides it.
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    assert "access-control-allow-credentials" not in answer.headers
    assert listed(answer.headers["vary"]) == ["origin"]


def test_answers_without_an_origin_still_vary_on_it(listing: httpx.Client) -> None:
    answer = listing.get("/graphql", params={"query": "{ __typename }"})
    assert "access-control-allow-origin" not in answer.headers
    assert listed(answer.headers["vary"]) == ["origin"]


def test_an_edge_refusal_is_readable_by_a_listed_page(listing: httpx.Client) -> None:
    origin = LISTED[0]
    big = {"query": "{ __typename }", "variables": {"pad": "x" * 2000}}
    response = listing.post("/graphql", json=big, headers={"Origin": origin})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"
    # The server carries on.
    ok = listing.post("/graphql", json={"query": "{ __typename }"}, headers={"Origin": origin})
    assert ok.json()["data"] == {"__typename": "Query"}


# -- the policy's own rules --------------------------------------------------------------


def test_a_star_in_a_list_never_comes_with_credentials() -> None:
    policy = CorsPolicy(["https://a.example", "*"])
    headers = dict(policy.headers(b"https://a.example"))
    assert headers[b"access-control-allow-origin"] == b"*"
    assert b"access-control-allow-credentials" not in headers
    assert b"vary" not in headers


def test_origins_are_compared_without_a_trailing_slash() -> None:
    policy = CorsPolicy(["https://a.example/"])
    assert policy.allows(b"https://a.example")
    assert not policy.allows(b"https://a.example.evil")
