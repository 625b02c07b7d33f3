"""Property-based: schemathesis generates queries and mutations from the exported
schema and sends them to a real server (PostgreSQL, Redis). None may fail with a
5xx or an `INTERNAL` error: every failure a client can cause is an expected one,
with its code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes

from tests.processes import ServerProcess

SDL = Path(__file__).resolve().parent.parent / "graphql" / "schema.graphql"

# Custom scalars: JSON objects of a few kinds, and dates good and bad.
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(
        st.builds(lambda: nodes.Object([])),
        st.integers().map(nodes.Int),
        st.text(max_size=20).map(nodes.String),
    ),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.sampled_from(["2026-01-01T00:00:00+00:00", "yesterday", ""]).map(nodes.String),
)

schema = schemathesis.graphql.from_path(SDL)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI failures reproduce
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_operation_fails_internally(case: Any, server: ServerProcess) -> None:
    response = case.call(base_url=f"{server.url}/graphql", timeout=10)
    assert response.status_code < 500, response.text
    body = response.json()
    codes = [error.get("extensions", {}).get("code") for error in body.get("errors") or []]
    assert "INTERNAL" not in codes, body
    assert None not in codes, body  # every error says what kind it is
