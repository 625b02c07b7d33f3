"""The per-request GraphQL context: the runtime and who is calling.

Authentication happens once, when the context is built; a failure is kept and
raised by the first resolver that needs the caller, so it reaches the client as a
typed GraphQL error rather than a transport failure. Nothing per-request (no
DataLoader) lives here, because a WebSocket connection reuses its context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.apps import Caller
from runtime.errors import ConfabError

if TYPE_CHECKING:
    from runtime.conversations import Conversations
    from runtime.core import Runtime


@dataclass
class Context:
    runtime: Runtime
    _caller: Caller | None = None
    _auth_error: ConfabError | None = None
    # Set by Strawberry from a WebSocket's `connection_init` payload.
    connection_params: dict[str, object] | None = None
    # The peer's address: unknown keys are limited per address.
    client: str | None = None
    # Rate limits count each operation (a WebSocket), not the request (HTTP).
    per_operation_limits: bool = False

    def authenticated_as(self, caller: Caller) -> None:
        self._caller, self._auth_error = caller, None

    def failed_auth(self, error: ConfabError) -> None:
        self._caller, self._auth_error = None, error

    @property
    def caller(self) -> Caller:
        if self._auth_error is not None:
            raise self._auth_error
        assert self._caller is not None, "context built without a caller or an error"
        return self._caller

    @property
    def key_prefix(self) -> str | None:
        """The key the caller authenticated with (None: no key, or no caller)."""
        return None if self._caller is None else self._caller.key_prefix

    @property
    def conversations(self) -> Conversations:
        return self.runtime.conversations
