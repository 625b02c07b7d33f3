"""The real server process: started as the README says, queried over HTTP, stopped
with SIGTERM, restarted with every piece of data still there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import new_id, new_wallet
from tests.live import run_cli
from tests.processes import ServerProcess

pytestmark = pytest.mark.processes


WRITE = """
mutation($id: ID!, $k: String!) {
  createSession(id: $id, publicKey: $k, metadata: {plan: "pro"}) { id }
  renameSession(id: $id, title: "Kept across restarts") { id }
}"""
THREAD = 'mutation($id: ID!) { createThread(sessionId: $id, title: "Side") { id } }'
READ = """
query($id: ID!, $k: String!) {
  session(id: $id) { title titleSource publicKey metadata threads { title isPrimary } }
  sessions(publicKey: $k) { edges { node { id } } }
}"""


def test_default_server_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    database = tmp_path / "embedded.sqlite3"
    server = ServerProcess({"DATABASE_URL": f"sqlite://{database}"}, tmp_path / "server.log")
    try:
        server.wait_ready()
        body = server.graphql("{ models }")
        assert body["data"] == {"models": ["builtin"]}
    finally:
        graceful = server.stop()
    log = server.log()
    assert graceful, log
    assert f"http://127.0.0.1:{server.port}" in log
    assert f"database: sqlite://{database}" in log
    assert database.exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_data_survives_a_restart(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        env = {"DATABASE_URL": f"sqlite://{tmp_path / 'restart.sqlite3'}"}
    else:
        env = {"DATABASE_URL": request.getfixturevalue("postgres_url")}
        migrated = run_cli(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
    session_id, wallet = new_id(), new_wallet()

    first = ServerProcess(env, tmp_path / "first.log")
    try:
        first.wait_ready()
        first.graphql(WRITE, id=session_id, k=wallet)
        first.graphql(THREAD, id=session_id)
    finally:
        assert first.stop(), first.log()

    second = ServerProcess(env, tmp_path / "second.log")
    try:
        second.wait_ready()
        data = second.graphql(READ, id=session_id, k=wallet)["data"]
    finally:
        assert second.stop(), second.log()
    assert data == {
        "session": {
            "title": "Kept across restarts",
            "titleSource": "USER",
            "publicKey": wallet,
            "metadata": {"plan": "pro"},
            "threads": [{"title": None, "isPrimary": True}, {"title": "Side", "isPrimary": False}],
        },
        "sessions": {"edges": [{"node": {"id": session_id}}]},
    }
