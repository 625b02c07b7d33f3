"""Persisted queries: Apollo's automatic persisted queries (APQ) and trusted documents.

A request may name its document by hash instead of sending it:
`extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`.

- Hash alone: the document registered under it runs (over POST or GET, so a CDN can
  cache the GET); unknown, the answer is `PERSISTED_QUERY_NOT_FOUND` (HTTP 200, as
  Apollo's link expects: it retries with the document).
- Document and hash: the hash must be the document's SHA-256
  (`PERSISTED_QUERY_HASH_MISMATCH`, 400, otherwise); a document that parses and
  validates is registered under it.

Registered documents live in a bounded in-process LRU (runtime/memo.py) in front of
Redis when the event bus is Redis (`confab:pq:<hash>`, a day's TTL refreshed on
each read, at most `SHARED_LIMIT` documents, oldest dropped first), so every
replica knows what any one was sent; with the memory bus, in the process only. A
document is never larger than the token and body limits allow (it parsed and
validated before it was stored). Redis being down degrades to the process's own
LRU: clients send the document again.

Trusted documents (`CONFAB_GRAPHQL_TRUSTED_DOCUMENTS`): only operations loaded ahead
of time (`server.py documents load`, runtime/trusted_documents.py) may run; any
other gets `PERSISTED_QUERY_NOT_ALLOWED` and nothing runs. Operations are matched
by their canonical form (schema/trusted.py), whatever the layout the client sends,
and a loaded document's hash works as a persisted query in either mode.
Introspection-only operations are always allowed. The check covers every transport
(HTTP, both WebSocket protocols, SSE, multipart), since they all run through the
schema (schema/build.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, GraphQLSchema, specified_rules
from runtime.memo import Memo
from runtime.trusted_documents import documents_after
from schema.documents import PreparedDocument, PreparedDocuments
from schema.errors import BAD_REQUEST, RequestErrors, request_error
from schema.trusted import is_introspection, operation_identity, sha256_hex

if TYPE_CHECKING:
    from schema.persisted_redis import SharedDocuments

logger = logging.getLogger(__name__)

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"

TRUSTED_REFRESH_SECONDS = 1.0  # a replica reads new trusted documents at most this often

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class DocumentRefused(Exception):
    """The request's document cannot run; `result()` is the answer that says why."""

    def __init__(self, message: str, code: str, status: int | None) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status

    def result(self) -> RequestErrors:
        return request_error(self.message, self.code, self.status)


def requested_hash(extensions: Mapping[str, Any]) -> str | None:
    """The `persistedQuery.sha256Hash` of a request's extensions (lower case), if any."""
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise DocumentRefused(
            "extensions.persistedQuery must be an object {version, sha256Hash}", BAD_REQUEST, 400
        )
    if persisted.get("version") != 1:
        raise DocumentRefused(
            "extensions.persistedQuery.version: only version 1 is supported", BAD_REQUEST, 400
        )
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        raise DocumentRefused(
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits (SHA-256)",
            BAD_REQUEST,
            400,
        )
    return digest.lower()


class _Missing(Exception):
    pass


def _missing() -> str:
    raise _Missing


class PersistedQueries:
    def __init__(self, *, trusted_only: bool, cache_size: int, redis_url: str | None) -> None:
        self.trusted_only = trusted_only
        self.trusted = TrustedSet()
        self._memo: Memo[str, str] = Memo(max(cache_size, 1))
        self._shared: SharedDocuments | None = None
        if redis_url:
            from schema.persisted_redis import SharedDocuments  # Redis only when shared

            self._shared = SharedDocuments(redis_url)

    async def resolve(
        self,
        query: str | None,
        extensions: Mapping[str, Any] | None,
        operation_name: str | None,
        documents: PreparedDocuments,
        schema: GraphQLSchema,
    ) -> str | None:
        """The text the operation runs; raises `DocumentRefused`. A syntax error is left
        for execution to report (nothing runs, nothing is registered)."""
        digest = requested_hash(extensions) if extensions else None
        register: str | None = None
        if not query:
            if digest is None:
                return query  # no document at all: the caller says so
            text = await self.lookup(digest)
            if text is None:
                raise DocumentRefused("PersistedQueryNotFound", NOT_FOUND, 200)
        else:
            text = query
            if digest is not None and self._known(digest) != text:
                actual = sha256_hex(text)
                if actual != digest:
                    raise DocumentRefused(
                        "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query "
                        f"(which is {actual})",
                        HASH_MISMATCH,
                        400,
                    )
                register = digest
        if not self.trusted_only and register is None:
            return text
        try:
            prepared = documents.parsed(text)
        except GraphQLError:
            return text
        if self.trusted_only and not await self.trusts(prepared, operation_name):
            raise DocumentRefused(
                "this operation is not a trusted document: only operations loaded with "
                "`server.py documents load` may run (CONFAB_GRAPHQL_TRUSTED_DOCUMENTS)",
                NOT_ALLOWED,
                None,
            )
        if register is not None and not documents.errors(prepared, schema, specified_rules):
            await self.register(register, text)
        return text

    async def lookup(self, digest: str) -> str | None:
        try:
            return self._memo.get(digest, _missing)
        except _Missing:
            pass
        text = await self.trusted.body(digest)
        if text is None and self._shared is not None:
            text = await self._shared.get(digest)
        if text is not None:
            self._memo.get(digest, lambda: text)
        return text

    async def register(self, digest: str, text: str) -> None:
        self._memo.get(digest, lambda: text)
        if self._shared is not None:
            await self._shared.put(digest, text)

    async def trusts(self, prepared: PreparedDocument, operation_name: str | None) -> bool:
        allowed = prepared.trusted
        if allowed is not None and operation_name in allowed:
            return True
        document = prepared.document
        identity = operation_identity(document, operation_name)
        # No operation selected: execution reports it, and runs nothing.
        ok = (
            identity is None
            or is_introspection(document, operation_name)
            or await self.trusted.allows(identity)
        )
        if ok:  # trusted once, trusted for as long as the document stays cached
            prepared.trusted = {*(allowed or ()), operation_name}
        return ok

    def _known(self, digest: str) -> str | None:
        try:
            return self._memo.get(digest, _missing)
        except _Missing:
            return None

    async def aclose(self) -> None:
        if self._shared is not None:
            await self._shared.aclose()


class TrustedSet:
    """This process's copy of the trusted documents, read from the database on first
    use and again (rows it does not hold yet) when asked for one it lacks, at most
    once per `TRUSTED_REFRESH_SECONDS`: unknown documents cost no query each."""

    def __init__(self, refresh_seconds: float = TRUSTED_REFRESH_SECONDS) -> None:
        self._refresh_seconds = refresh_seconds
        self._bodies: dict[str, str] = {}
        self._operations: set[str] = set()
        self._last_id = 0
        self._read_at = -float("inf")
        self._lock = asyncio.Lock()

    async def body(self, digest: str) -> str | None:
        if digest not in self._bodies:
            await self._refresh()
        return self._bodies.get(digest)

    async def allows(self, identity: str) -> bool:
        if identity not in self._operations:
            await self._refresh()
        return identity in self._operations

    async def _refresh(self) -> None:
        if time.monotonic() - self._read_at < self._refresh_seconds:
            return
        async with self._lock:
            if time.monotonic() - self._read_at < self._refresh_seconds:
                return  # another request read while this one waited
            self._read_at = time.monotonic()
            try:
                rows = await documents_after(self._last_id)
            except Exception as exc:  # a missing table (not migrated), the database down
                logger.warning("cannot read the trusted GraphQL documents: %r", exc)
                return
            for row in rows:
                self._bodies[row.hash] = row.body
                self._operations.add(row.operation_hash)
                self._last_id = max(self._last_id, row.id)
