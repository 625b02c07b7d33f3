"""Stock Strawberry's schema for the snapshot peer (bench/peer_servers.py): module
level, as Strawberry resolves annotations by name in the module's scope."""

from __future__ import annotations

from typing import Any

import strawberry


@strawberry.type
class Message:
    id: strawberry.ID
    role: str
    content: str
    created_at: str


@strawberry.type
class MessageConnection:
    nodes: list[Message]


@strawberry.type
class Session:
    title: str
    is_processing: bool

    @strawberry.field
    def messages(self, last: int | None = None) -> MessageConnection:
        return MessageConnection(nodes=_messages[-(last or 50) :])


@strawberry.type
class Query:
    @strawberry.field
    def session(self, id: strawberry.ID) -> Session | None:
        return Session(title=_snapshot["title"], is_processing=_snapshot["isProcessing"])


_snapshot: dict[str, Any] = {}
_messages: list[Message] = []


def load(snapshot: dict[str, Any]) -> None:
    """Serve this snapshot (the JSON `data.session` of Confab's answer)."""
    _snapshot.update(snapshot)
    _messages[:] = [
        Message(id=m["id"], role=m["role"], content=m["content"], created_at=m["createdAt"])
        for m in snapshot["messages"]["nodes"]
    ]
