"""Results of session reads, kept until the session changes.

A query whose only root field is `session(id:)` and whose every selected field is
a pure view of the session record and its recent messages (`messages(last:)`,
served from the tail the session host keeps exactly at the session's version,
runtime/sessions.py) has one result per (document, variables, caller, session
version). Such a result is kept (bounded LRU) and answered again, without
execution, while the session stays at that version: the hit still loads the
session the usual way (the cross-replica coherence check included) and compares
versions, so read-your-writes is exactly as strong as without it.

Which fields qualify is a static list below: a field that reads anything else
(threads, system events, the streaming message, another session, the clock) makes
the document ineligible, and so does any argument or directive beyond the few
named here. A result is kept only when the session was cached at the same version
before and after execution and its tail covered the window read: then every value
in it came from that version.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from strawberry.types import ExecutionResult

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
)
from runtime.apps import Caller
from runtime.conversations import Conversations
from runtime.errors import ConfabError
from schema.context import Context

if TYPE_CHECKING:
    from schema.documents import PreparedDocument

# Results kept at most (each about the size of its JSON answer).
KEPT_RESULTS = 2_000
# Per type, the fields that are pure views of a session record (and its tail).
PURE_FIELDS: dict[str, frozenset[str]] = {
    "Query": frozenset({"session"}),
    "Session": frozenset(
        [
            "id",
            "app",
            "title",
            "titleSource",
            "publicKey",
            "userState",
            "state",
            "metadata",
            "model",
            "isArchived",
            "isPinned",
            "isProcessing",
            "version",
            "createdAt",
            "updatedAt",
            "lastActiveAt",
            "expiresAt",
            "legacyId",
            "messages",
        ]
    ),
    "MessageConnection": frozenset({"edges", "pageInfo", "nodes"}),
    "MessageEdge": frozenset({"cursor", "node"}),
    "PageInfo": frozenset({"hasNextPage", "hasPreviousPage", "startCursor", "endCursor"}),
    "Message": frozenset(
        [
            "id",
            "sessionId",
            "threadId",
            "seq",
            "role",
            "content",
            "toolCalls",
            "toolResults",
            "isInterrupted",
            "createdAt",
            "cursor",
            "isStreaming",
        ]
    ),
}
# The field each object field leads to (only the non-scalar ones).
CHILD_TYPES = {
    ("Query", "session"): "Session",
    ("Session", "messages"): "MessageConnection",
    ("MessageConnection", "edges"): "MessageEdge",
    ("MessageConnection", "pageInfo"): "PageInfo",
    ("MessageConnection", "nodes"): "Message",
    ("MessageEdge", "node"): "Message",
}
# Arguments allowed, per field; `messages` only as the newest window (`last`).
ARGUMENTS = {("Query", "session"): {"id"}, ("Session", "messages"): {"last"}}
CONDITIONAL = {"include", "skip"}  # their `if` is a variable or a literal: in the key


@dataclass(frozen=True, slots=True)
class SessionReadPlan:
    """Where a qualifying document's session id and message windows come from."""

    session_id: Any  # a literal value node or a variable node
    windows: tuple[Any, ...]  # the `last` arguments of its `messages` fields

    def session(self, variables: dict[str, Any] | None) -> UUID | None:
        value = _value(self.session_id, variables)
        try:
            return UUID(str(value)) if value is not None else None
        except ValueError:
            return None  # answered by execution, with its error

    def widest_window(self, variables: dict[str, Any] | None) -> int | None:
        """The largest `last` read (0 when no messages are); None when one is not a
        plain integer (execution reports it)."""
        widest = 0
        for node in self.windows:
            value = _value(node, variables)
            if not isinstance(value, int) or isinstance(value, bool):
                return None
            widest = max(widest, value)
        return widest


def plan(document: DocumentNode, operation_name: str | None) -> SessionReadPlan | None:
    """The plan of a qualifying query, or None."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return None
    operation = operations[0]
    if operation.directives:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found: dict[str, list[Any]] = {"session": [], "windows": []}
    if not _pure(operation.selection_set, "Query", fragments, found, set()):
        return None
    if len(found["session"]) != 1:
        return None
    return SessionReadPlan(found["session"][0], tuple(found["windows"]))


def _pure(
    selections: SelectionSetNode,
    type_name: str,
    fragments: dict[str, FragmentDefinitionNode],
    found: dict[str, list[Any]],
    spreading: set[str],
) -> bool:
    allowed = PURE_FIELDS[type_name]
    for selection in selections.selections:
        if any(d.name.value not in CONDITIONAL for d in selection.directives or ()):
            return False
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name == "__typename":
                continue
            if name not in allowed or not _arguments(selection, type_name, found):
                return False
            child = CHILD_TYPES.get((type_name, name))
            if child is not None:
                if selection.selection_set is None:
                    return False
                if not _pure(selection.selection_set, child, fragments, found, spreading):
                    return False
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is not None and condition.name.value != type_name:
                return False
            if not _pure(selection.selection_set, type_name, fragments, found, spreading):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None or fragment.name.value in spreading:
                return False
            if fragment.type_condition.name.value != type_name:
                return False
            inner = spreading | {fragment.name.value}
            if not _pure(fragment.selection_set, type_name, fragments, found, inner):
                return False
        else:
            return False
    return True


def _arguments(field: FieldNode, type_name: str, found: dict[str, list[Any]]) -> bool:
    key = (type_name, field.name.value)
    given = {argument.name.value: argument.value for argument in field.arguments or ()}
    if not set(given) <= ARGUMENTS.get(key, set()):
        return False
    if key == ("Query", "session"):
        found["session"].append(given["id"])
    elif key == ("Session", "messages"):
        if "last" not in given:
            return False  # the first page from the oldest: not the tail
        found["windows"].append(given["last"])
    return True


def _value(node: Any, variables: dict[str, Any] | None) -> Any:
    if isinstance(node, VariableNode):
        return (variables or {}).get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, StringValueNode):
        return node.value
    return None


@dataclass(frozen=True, slots=True)
class _Kept:
    version: int
    result: ExecutionResult


class SessionReads:
    """The kept results (least recently used go first), and the checks that decide
    when one may be answered."""

    def __init__(self, capacity: int = KEPT_RESULTS) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[tuple[Any, ...], _Kept] = OrderedDict()
        self.answered = 0  # how many requests a kept result answered

    @staticmethod
    def key(
        query: str, operation_name: str | None, variables: dict[str, Any] | None, caller: Caller
    ) -> tuple[Any, ...] | None:
        try:
            encoded = json.dumps(variables, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            return None
        identity = (caller.app, caller.key_prefix, caller.key_apps, caller.bearer)
        return (query, operation_name, encoded, identity)

    async def answer(
        self, key: tuple[Any, ...], session_id: UUID, conversations: Conversations
    ) -> ExecutionResult | None:
        """The kept result, if the session is still at its version."""
        kept = self._kept.get(key)
        if kept is None:
            return None
        self._kept.move_to_end(key)
        if not await conversations.unchanged_since(session_id, kept.version):
            return None
        self.answered += 1
        return kept.result

    def keep(
        self,
        key: tuple[Any, ...],
        session_id: UUID,
        window: int,
        before: int | None,
        conversations: Conversations,
        result: ExecutionResult,
    ) -> None:
        """Keep `result` if it was computed from one version: the session was cached
        at `before` when execution began and still is, with a tail covering `window`."""
        if result.errors or before is None:
            return
        if not conversations.cached_exactly(session_id, before, window):
            return
        self._kept[key] = _Kept(before, result)
        self._kept.move_to_end(key)
        if len(self._kept) > self._capacity:
            self._kept.popitem(last=False)


@dataclass(frozen=True, slots=True)
class SessionRead:
    """One request's session read: its key, its session and window, and where the
    session's versions are checked."""

    key: tuple[Any, ...]
    session_id: UUID
    window: int
    conversations: Conversations


def session_read(
    prepared: PreparedDocument,
    query: str,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    context: Any,
) -> SessionRead | None:
    """The request as a session read (its plan found once per document and operation
    name), or None when it is not one."""
    plans = prepared.session_reads
    if operation_name not in plans:
        plans[operation_name] = plan(prepared.document, operation_name)
    found = plans[operation_name]
    if found is None or not isinstance(context, Context):
        return None
    try:
        caller = context.caller
    except ConfabError:
        return None  # answered by execution, with the authentication error
    session_id = found.session(variables)
    window = found.widest_window(variables)
    key = SessionReads.key(query, operation_name, variables, caller)
    if session_id is None or window is None or key is None:
        return None
    return SessionRead(key, session_id, window, context.conversations)
