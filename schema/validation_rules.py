"""Confab's document limits: operation depth and aliases, in time linear in the document.

They replace Strawberry's `QueryDepthLimiter` and `MaxAliasesLimiter`, which walk
into a fragment at every spread (exponential in a chain of fragments that each spread
the next twice). Here each fragment is summarized once (schema/fragments.py) and a
spread adds its fragment's summary.

- Depth, as Strawberry counts it: a field with a selection set is one level more than
  its deepest child; leaves, and introspection fields (`__schema`, `__type`, which
  graphql-core's `MaxIntrospectionDepthRule` bounds), count nothing.
- Aliases are counted as executed: a fragment with 10 aliases spread 10 times is 100,
  because each spread is another copy of the aliased fields to resolve.

graphql-core's own `OverlappingFieldsCanBeMergedRule` stays quadratic: it compares
every two fields that share a response name (`{ apps { name } apps { name } ... }`).
It meters that work and aborts validation past a budget, which
`bound_overlap_comparisons` lowers from graphql-core's default of 500,000 units (the
better part of a second here, within the token limit) to `OVERLAP_BUDGET`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphql.validation.rules import overlapping_fields_can_be_merged

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)
from schema.fragments import fragment_definitions, summarize_fragments

# Confab's operations (graphql/operations/) spend under 10 units, GraphiQL's
# introspection query none, 50 sibling fragments of two fields each about 10,000; a
# unit is a microsecond or two, so no document is compared for more than tens of ms.
OVERLAP_BUDGET = 20_000


@dataclass(frozen=True, slots=True)
class Shape:
    depth: int
    aliases: int


def document_limits_rule(max_depth: int, max_aliases: int) -> type[ASTValidationRule]:
    """One rule class per schema: a validation cache keys on the rule classes."""

    class DocumentLimitsRule(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            # Everything is decided from the whole document at once; the rule has no
            # visitor methods, so graphql-core's traversal does not call it per node.
            document = context.document
            fragments = summarize_fragments(fragment_definitions(document), _fragment_shape)
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    self._check(definition, _shape(definition.selection_set, fragments))

        def _check(self, operation: OperationDefinitionNode, shape: Shape) -> None:
            name = operation.name.value if operation.name else "anonymous"
            if shape.depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"'{name}' exceeds maximum operation depth of {max_depth}", operation
                    )
                )
            if shape.aliases > max_aliases:
                self.report_error(
                    GraphQLError(
                        f"{shape.aliases} aliases found (counted through fragment spreads) "
                        f"in '{name}'. Allowed: {max_aliases}",
                        operation,
                    )
                )

    return DocumentLimitsRule


def bound_overlap_comparisons() -> None:
    """graphql-core reads this module attribute whenever the rule starts: it is its
    documented knob, and it applies process-wide."""
    overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET = OVERLAP_BUDGET


def _fragment_shape(fragment: FragmentDefinitionNode, fragments: Mapping[str, Shape]) -> Shape:
    return _shape(fragment.selection_set, fragments)


def _shape(selection_set: SelectionSetNode, fragments: Mapping[str, Shape]) -> Shape:
    """Recursive over nested selection sets only (graphql-core's parser allows 200
    levels), never into a fragment: a spread reads the fragment's summary."""
    depth = aliases = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                aliases += 1
            if selection.selection_set is None:
                continue
            inner = _shape(selection.selection_set, fragments)
            aliases += inner.aliases
            if not selection.name.value.startswith("__"):  # introspection adds no depth
                depth = max(depth, inner.depth + 1)
            continue
        if isinstance(selection, InlineFragmentNode):
            inner = _shape(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            found = fragments.get(selection.name.value)
            if found is None:
                continue  # unknown, or closing a cycle: other rules report it
            inner = found
        else:  # pragma: no cover - the three kinds of selection
            continue
        depth = max(depth, inner.depth)
        aliases += inner.aliases
    return Shape(depth, aliases)
