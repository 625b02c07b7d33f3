"""History persistence: the protocol the runtime uses, and how a backend is chosen."""

from runtime.store.protocol import MessageWindow, NewMessage, SessionQuery, SessionStore

__all__ = ["MessageWindow", "NewMessage", "SessionQuery", "SessionStore"]
