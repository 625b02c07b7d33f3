"""What makes two GraphQL documents the same trusted operation.

Trusted documents are matched by the operation a request runs, not by the bytes it
sends: clients print their documents their own way (Apollo Client prints before it
hashes, and adds `__typename` to every selection for its cache; a file keeps its
comments and layout), and a document often holds several operations. The canonical
form of one operation is graphql-core's printing of it followed by every fragment
it uses (transitively), sorted by name; a registered document is stored in that
form. The operation's identity is the SHA-256 of the same text without `__typename`
fields (which every object type answers, and which reveal nothing the schema does
not): a request is allowed when the operation it selects has the identity of a
trusted one.

Introspection-only operations (every root field is `__schema`, `__type` or
`__typename`) are always allowed, so GraphiQL and code generators can read the
schema, which is public anyway (graphql/schema.graphql).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from graphql import (
    REMOVE,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    Visitor,
    print_ast,
    visit,
)

INTROSPECTION_FIELDS = frozenset({"__schema", "__type", "__typename"})


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def operations(document: DocumentNode) -> Iterator[tuple[OperationDefinitionNode, str, str]]:
    """Each operation of `document` with its canonical text and its identity (fragments
    missing from the document are left out: validation reports them)."""
    fragments = _fragments(document)
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            used = _used_fragments(definition, fragments)
            yield definition, _canonical(definition, used), _identity(definition, used)


def operation_identity(document: DocumentNode, operation_name: str | None) -> str | None:
    """The identity of the operation a request selects; None if it selects none (no
    such name, or several operations and no name)."""
    operation = select_operation(document, operation_name)
    if operation is None:
        return None
    return _identity(operation, _used_fragments(operation, _fragments(document)))


def select_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    found = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return found[0] if len(found) == 1 else None
    return next((d for d in found if d.name is not None and d.name.value == operation_name), None)


def is_introspection(document: DocumentNode, operation_name: str | None) -> bool:
    operation = select_operation(document, operation_name)
    if operation is None:
        return False
    fragments = _fragments(document)
    seen: set[str] = set()

    def only_meta(selection_set: SelectionSetNode) -> bool:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value not in INTROSPECTION_FIELDS:
                    return False
            elif isinstance(selection, InlineFragmentNode):
                if not only_meta(selection.selection_set):
                    return False
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None:
                    return False
                if name not in seen:
                    seen.add(name)
                    if not only_meta(fragment.selection_set):
                        return False
        return True

    return only_meta(operation.selection_set)


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _used_fragments(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> list[FragmentDefinitionNode]:
    """The fragments the operation uses, directly or not, sorted by name."""
    used: dict[str, FragmentDefinitionNode] = {}
    pending = [operation.selection_set]
    while pending:
        for name in _spreads(pending.pop()):
            fragment = fragments.get(name)
            if fragment is not None and name not in used:
                used[name] = fragment
                pending.append(fragment.selection_set)
    return [used[name] for name in sorted(used)]


def _canonical(operation: OperationDefinitionNode, used: list[FragmentDefinitionNode]) -> str:
    return "\n\n".join(print_ast(node) for node in (operation, *used))


def _identity(operation: OperationDefinitionNode, used: list[FragmentDefinitionNode]) -> str:
    stripped: list[Node] = [visit(node, _WITHOUT_TYPENAME) for node in (operation, *used)]
    return sha256_hex("\n\n".join(print_ast(node) for node in stripped))


class _WithoutTypename(Visitor):
    def enter_field(self, node: FieldNode, *_: Any) -> object:
        return REMOVE if node.name.value == "__typename" else None


_WITHOUT_TYPENAME = _WithoutTypename()


def _spreads(selection_set: SelectionSetNode) -> Iterator[str]:
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                pending.append(selection.selection_set)
