"""Apps and keys: authentication headers, app isolation, the keys CLI, revocation."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from runtime import keys
from settings import Settings
from tests.conftest import GraphQLClient, new_id, new_wallet

pytestmark = pytest.mark.processes


ROOT = Path(__file__).resolve().parent.parent

CREATE = "mutation($id: ID!, $k: String) { createSession(id: $id, publicKey: $k) { id app } }"
GET = "query($id: ID!) { session(id: $id) { id app title } }"


async def test_each_key_header_authenticates(client: httpx.AsyncClient, alpha_key: str) -> None:
    query = {"query": "{ models }"}
    for headers in (
        {"AOMI-APP-KEY": alpha_key},
        {"x-api-key": alpha_key},
        {"Authorization": f"Bearer {alpha_key}"},
    ):
        response = await client.post("/graphql", json=query, headers=headers)
        assert response.json()["data"] == {"models": ["builtin", "builtin-large"]}, headers


async def test_non_default_app_needs_a_key(gql: GraphQLClient) -> None:
    response = await gql.http.post("/graphql?app=alpha", json={"query": "{ models }"})
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_unknown_key_is_unauthenticated(gql: GraphQLClient) -> None:
    error = await gql.with_key("cfb_deadbeef_nope").error("{ models }")
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_key_for_another_app_is_forbidden(gql: GraphQLClient, alpha_key: str) -> None:
    response = await gql.http.post(
        "/graphql?app=beta", json={"query": "{ models }"}, headers={"X-API-Key": alpha_key}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_apps_query_lists_what_the_key_covers(gql: GraphQLClient, alpha_key: str) -> None:
    data = await gql.with_key(alpha_key).data("{ apps { name } }")
    assert [a["name"] for a in data["apps"]] == ["alpha", "default"]


async def test_sessions_are_isolated_between_apps(
    gql: GraphQLClient, alpha_key: str, beta_key: str
) -> None:
    alpha, beta, anonymous = gql.with_key(alpha_key), gql.with_key(beta_key), gql
    wallet = new_wallet()
    session_id = new_id()
    created = await alpha.data(CREATE, id=session_id, k=wallet)
    assert created["createSession"]["app"] == "alpha"

    # Reading, listing, changing or deleting from another app finds nothing.
    for other in (beta, anonymous):
        assert (await other.data(GET, id=session_id))["session"] is None
        listed = await other.data(
            "query($k: String) { sessions(publicKey: $k) { edges { cursor } } }", k=wallet
        )
        assert listed["sessions"]["edges"] == []
        for mutation in (
            'mutation($id: ID!) { renameSession(id: $id, title: "x") { id } }',
            "mutation($id: ID!) { archiveSession(id: $id) { id } }",
            "mutation($id: ID!) { deleteSession(id: $id) { id } }",
            "mutation($id: ID!) { createThread(sessionId: $id) { id } }",
            "mutation($id: ID!) { updateMetadata(sessionId: $id, metadata: {}) { id } }",
        ):
            error = await other.error(mutation, id=session_id)
            assert error["extensions"]["code"] == "NOT_FOUND", mutation
        messages = await other.error(
            "query($id: ID!) { messages(threadId: $id) { edges { cursor } } }", id=session_id
        )
        assert messages["extensions"]["code"] == "NOT_FOUND"
        # Creating the same id elsewhere does not take it over.
        conflict = await other.error(CREATE, id=session_id, k=None)
        assert conflict["extensions"]["code"] == "CONFLICT"

    still = await alpha.data(GET, id=session_id)
    assert still["session"] == {"id": session_id, "app": "alpha", "title": "New chat"}


async def test_ttl_of_the_app_sets_expiry(gql: GraphQLClient, alpha_key: str) -> None:
    data = await gql.with_key(alpha_key).data(
        "mutation($id: ID!) { createSession(id: $id) { createdAt expiresAt } }", id=new_id()
    )
    assert data["createSession"]["expiresAt"] is not None


async def test_revoked_key_stops_working_at_once_where_revoked(
    app: Starlette, gql: GraphQLClient
) -> None:
    clear, info = await keys.create_key(["alpha"], "temporary")
    assert (await gql.with_key(clear).data("{ models }"))["models"]  # now cached
    await app.state.runtime.apps.revoke_key(info.prefix)
    error = await gql.with_key(clear).error("{ models }")
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "CONFAB_CONFIG": str(settings.config_file),
        "CONFAB_AUTO_MIGRATE": "true",
    }
    return subprocess.run(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.usefixtures("app")
async def test_keys_cli_create_list_revoke(gql: GraphQLClient, settings: Settings) -> None:
    created = run_cli(settings, "keys", "create", "--app", "beta", "--label", "cli test")
    assert created.returncode == 0, created.stderr
    clear = created.stdout.strip()
    prefix = clear.rsplit("_", 1)[0]
    assert clear.startswith("cfb_")
    assert prefix in created.stderr

    data = await gql.with_key(clear).data("mutation { createSession { app } }")
    assert data["createSession"]["app"] == "beta"

    listed = run_cli(settings, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(prefix))
    assert "beta" in row
    assert "cli test" in row
    assert clear not in listed.stdout  # the clear key is never shown again

    revoked = run_cli(settings, "keys", "revoke", prefix)
    assert revoked.returncode == 0, revoked.stderr
    # Revoked by another process: honoured once this server's short key cache expires.
    deadline = time.monotonic() + settings.key_cache_ttl + 1
    while True:
        body = await gql.with_key(clear).raw("{ models }")
        if "errors" in body or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    listed_after = run_cli(settings, "keys", "list")
    row_after = next(line for line in listed_after.stdout.splitlines() if line.startswith(prefix))
    # The last column, the revocation time, is now a timestamp rather than "-".
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", row_after.rstrip()), row_after


@pytest.mark.usefixtures("app")
async def test_keys_cli_rejects_unknown_apps_and_prefixes(settings: Settings) -> None:
    unknown_app = run_cli(settings, "keys", "create", "--app", "nosuch")
    assert unknown_app.returncode == 1
    assert "unknown app" in unknown_app.stderr
    unknown_prefix = run_cli(settings, "keys", "revoke", "cfb_00000000")
    assert unknown_prefix.returncode == 1
    assert "no key" in unknown_prefix.stderr


async def test_keys_are_stored_hashed(app: object) -> None:
    from models import ApiKey

    clear, info = await keys.create_key(["alpha"])
    row = await ApiKey.get(prefix=info.prefix)
    assert clear not in (row.key_hash, row.prefix, row.label)
    assert len(row.key_hash) == 64
