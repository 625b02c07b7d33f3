"""Property-based: schemathesis generates requests from /api/openapi.json and checks,
against a real server process, that none gets a 500 and every response fits the
document (status codes, content types, headers, bodies, Allow on 405)."""

from __future__ import annotations

import tomllib
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from rest.openapi import document
from tests.conftest import APPS_TOML
from tests.processes import ServerProcess

APPS = ["default", *tomllib.loads(APPS_TOML)["apps"]]
schema = schemathesis.openapi.from_dict(document(sorted(APPS)))


def test_the_served_document_is_this_one(server: ServerProcess) -> None:
    served = httpx.get(f"{server.url}/api/openapi.json", timeout=5).json()
    assert served == document(sorted(APPS))
    assert served["openapi"].startswith("3.1")


@schema.exclude(path_regex=r".*/updates$").parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_500_and_responses_match_the_document(case: Any, server: ServerProcess) -> None:
    # Every check on responses; the checks that judge which *requests* must be
    # accepted are left out: the legacy contract takes a message from the query or
    # a body, which OpenAPI cannot state, and validates wallets and titles beyond it.
    excluded = [checks.positive_data_acceptance, checks.negative_data_rejection]
    if case.path == "/api/simulate":
        # The test apps name no simulator: 501 is the documented answer.
        excluded.append(checks.not_a_server_error)
    case.call_and_validate(base_url=server.url, timeout=10, excluded_checks=excluded)


@schema.include(path_regex=r".*/updates$").parametrize()
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_event_stream_requests_never_fail_with_500(case: Any, server: ServerProcess) -> None:
    # A well-formed request opens an endless stream, so only its status and
    # headers are checked here; tests/test_rest_*.py read the events.
    kwargs = case.as_transport_kwargs(base_url=server.url)
    # Generated header values may be any Latin-1 text (as HTTP allows); httpx
    # encodes str values as ASCII, so hand it the bytes.
    sent = {name: value.encode("latin-1") for name, value in (kwargs.get("headers") or {}).items()}
    with httpx.stream(
        kwargs["method"],
        kwargs["url"],
        headers=sent,
        params=kwargs.get("params"),
        timeout=5,
    ) as response:
        if kwargs["method"].upper() != "GET":  # "unsupported method" probes
            assert response.status_code == 405
            assert "GET" in response.headers["allow"]
            return
        assert response.status_code in (200, 400, 401, 403, 404, 429), response.status_code
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("text/event-stream")
