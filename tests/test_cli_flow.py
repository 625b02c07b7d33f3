"""The legacy command-line chat's whole flow against a keyed app on a real server
process (PostgreSQL, Redis): sync the wallet's user state, post a system message
before the first chat (which creates the session), ingest a secret, chat so a tool
uses it (its progress and result arrive on the update stream), clear the secrets
(the handle then no longer resolves)."""

from __future__ import annotations

import json

import httpx

from tests.conftest import new_id
from tests.rest_client import (
    assert_legacy_message,
    chat,
    headers,
    ok,
    until_idle,
    updates,
)
from tests.vault_server import env, http, server, vault_key  # noqa: F401 - fixtures
from tests.vault_support import sha256, tool_output, use_secret

WALLET = "0x742d35Cc6634C0532925a3b844Bc454e4438f44e"


async def test_the_command_line_chat_flow(http: httpx.AsyncClient, vault_key: str) -> None:
    session_id = new_id()
    client_id = f"cli-{new_id()}"
    app = {"app": "vault"}
    sent = headers(session_id, vault_key)
    user_state = json.dumps({"address": WALLET, "chain_id": 1, "is_connected": True})

    # 1. Sync the wallet: the state of a session that does not exist yet.
    synced = ok(
        await http.get(
            "/api/state",
            params={**app, "user_state": user_state, "client_id": client_id},
            headers=sent,
        )
    )
    assert synced["messages"] == []
    assert synced["is_processing"] is False

    # 2. A system message before the first chat creates the session.
    notice = f"Wallet connected: {WALLET} on chain 1"
    posted = ok(await http.post("/api/system", params={**app, "message": notice}, headers=sent))
    assert_legacy_message(posted["res"])
    assert posted["res"]["sender"] == "system"
    assert posted["res"]["content"] == notice

    # 3. Ingest a secret.
    value = f"wallet-signing-key-{new_id()}"
    handles = ok(
        await http.post(
            "/api/secrets",
            json={"client_id": client_id, "secrets": {"signer": value}},
            headers=sent,
        )
    )
    assert handles == {"handles": {"signer": "$SECRET:signer"}}

    # 4. Chat so that a tool uses it: progress and result arrive on the stream.
    async with updates(http, session_id, vault_key, "vault") as stream:
        ok(
            await chat(
                http,
                session_id,
                use_secret("$SECRET:signer"),
                vault_key,
                "vault",
                client_id=client_id,
                user_state=user_state,
            )
        )
        (complete,) = await stream.wait_for_type("tool_complete")
        updates_seen = stream.of_type("tool_update")
        snapshot, _ = await until_idle(http, session_id, vault_key, "vault")
    assert complete["tool_name"] == "use_secret"
    assert complete["session_id"] == session_id
    assert complete["result"]["sha256"] == sha256(value)
    assert complete["result"]["echo"] == "$SECRET:signer"
    assert {u["id"] for u in updates_seen} == {complete["id"]}
    assert updates_seen[0]["result"]["arguments"] == {"token": "$SECRET:signer"}
    assert value not in json.dumps(stream.events)
    assert tool_output(snapshot)["result"]["sha256"] == sha256(value)
    assert value not in json.dumps(snapshot)
    contents = [m["content"] for m in snapshot["messages"]]
    assert notice in contents
    assert snapshot["user_state"]["evm"]["address"].lower() == WALLET.lower()

    # 5. Clear the secrets: the handle no longer resolves.
    cleared = await http.delete("/api/secrets", params={"client_id": client_id}, headers=sent)
    assert ok(cleared) == {"cleared": True}
    ok(
        await chat(
            http,
            session_id,
            use_secret("$SECRET:signer"),
            vault_key,
            "vault",
            client_id=client_id,
        )
    )
    snapshot, _ = await until_idle(http, session_id, vault_key, "vault")
    assert tool_output(snapshot)["result"]["sha256"] == sha256("$SECRET:signer")
