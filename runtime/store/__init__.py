"""History persistence: the protocol the runtime uses, and how a backend is chosen."""

from __future__ import annotations

import importlib

from runtime.store.protocol import (
    AppKeyStore,
    AppRow,
    MessageTail,
    MessageWindow,
    NewMessage,
    SessionQuery,
    SessionStore,
)


def create_store(import_path: str | None = None) -> SessionStore:
    """The Tortoise store, or a custom one named `package.module:factory`
    (`CONFAB_STORE`); Tortoise is imported only for its own."""
    if not import_path:
        from runtime.store.tortoise_store import TortoiseStore

        return TortoiseStore()
    module_name, _, attribute = import_path.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    store: SessionStore = factory()
    return store


__all__ = [
    "AppKeyStore",
    "AppRow",
    "MessageTail",
    "MessageWindow",
    "NewMessage",
    "SessionQuery",
    "SessionStore",
    "create_store",
]
