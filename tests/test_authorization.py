"""Who may read what is decided in the runtime (runtime/conversations.py), also for
the records a transport already holds: `Session.messages`, `Session.streamingMessage`
and REST snapshots check the caller against the record they were given instead of
trusting whoever built it; and a session named before it exists is the caller's,
nothing yet, or another app's (`addressed`), decided in one place."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from starlette.applications import Starlette

from runtime.apps import Caller
from runtime.conversations import Conversations
from runtime.core import Runtime
from runtime.errors import NotFound
from runtime.events.envelope import utc_now
from runtime.store import MessageWindow
from tests.conftest import new_id

ALPHA = Caller(app="alpha", key_prefix="cfb_test", key_apps=("alpha",))
BETA = Caller(app="beta", key_prefix="cfb_other", key_apps=("beta",))


@pytest.fixture
def runtime(app: Starlette) -> Runtime:
    found: Runtime = app.state.runtime
    return found


async def test_a_held_record_is_checked_against_the_caller(runtime: Runtime) -> None:
    record, _ = await runtime.conversations.create_session(ALPHA, UUID(new_id()))
    window = MessageWindow(limit=10)
    page = await runtime.conversations.primary_messages(ALPHA, record, window)
    assert page.items == []
    with pytest.raises(NotFound):
        await runtime.conversations.primary_messages(BETA, record, window)
    with pytest.raises(NotFound):
        await runtime.snapshots.read(BETA, record)
    expired = replace(record, expires_at=utc_now() - timedelta(seconds=1))
    with pytest.raises(NotFound):
        await runtime.conversations.primary_messages(ALPHA, expired, window)
    assert (await runtime.snapshots.read(ALPHA, record)).session.id == record.id


async def test_a_named_session_is_the_callers_none_yet_or_another_apps(
    runtime: Runtime,
) -> None:
    record, _ = await runtime.conversations.create_session(ALPHA, UUID(new_id()))
    assert Conversations.addressed(ALPHA, record) == record
    assert Conversations.addressed(BETA, None) is None
    with pytest.raises(NotFound):
        Conversations.addressed(BETA, record)
    expired = replace(record, expires_at=utc_now() - timedelta(seconds=1))
    assert Conversations.addressed(ALPHA, expired) is None
    bearer = Caller(app="default", bearer=True)
    assert Conversations.addressed(bearer, record, follow=True) == record
    with pytest.raises(NotFound):
        Conversations.addressed(bearer, record)


def test_no_transport_reads_the_session_cache_or_the_store_directly() -> None:
    """Transports reach sessions through `Conversations` (which applies the caller),
    never through `runtime.sessions` (the cache) or `runtime.store`."""
    root = Path(__file__).resolve().parent.parent
    direct = re.compile(r"(?<!from )\bruntime\.(sessions|store)\b|\b(SessionHost|TortoiseStore)\b")
    found = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("rest", "schema", "resolvers")
        for path in sorted((root / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if direct.search(line)
    ]
    assert found == []


async def test_a_claim_loses_to_a_change_made_meanwhile(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty keyless session becomes the first keyed app's that names it, by a
    compare-and-set on its version: if the session changes between the check and
    the move (a message stored, a wallet bound), it stays where it is."""
    keyless = Caller(app="default")
    session_id = UUID(new_id())
    await runtime.conversations.create_session(keyless, session_id)
    store = runtime.store
    checked = store.has_messages

    async def changed_meanwhile(checked_id: UUID) -> bool:
        empty = await checked(checked_id)
        await runtime.conversations.update_metadata(keyless, session_id, {"n": 1})
        return empty

    monkeypatch.setattr(store, "has_messages", changed_meanwhile)
    assert await runtime.conversations.find_session(ALPHA, session_id) is None
    monkeypatch.undo()
    kept = await runtime.conversations.find_session(keyless, session_id)
    assert kept is not None
    assert kept.app == "default"
    assert kept.metadata == {"n": 1}
    # Unchanged, the same claim moves it.
    other = UUID(new_id())
    await runtime.conversations.create_session(keyless, other)
    claimed = await runtime.conversations.find_session(ALPHA, other)
    assert claimed is not None
    assert claimed.app == "alpha"
