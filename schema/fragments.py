"""A document's fragments summarized bottom-up, each fragment's selections walked once.

A rule that follows a fragment spread by walking into the fragment walks it once per
path that reaches it: in a chain of k fragments where each spreads the next twice,
the last one is walked 2^k times (Strawberry's depth and alias limiters did this; 20
fragments held the event loop for half a minute). Here every fragment is summarized
once, after the fragments it spreads, and a rule combines those summaries wherever a
spread appears: the work is linear in the document's size.

A spread that closes a cycle, or names an unknown fragment, has no summary when its
fragment is summarized: graphql-core's `NoFragmentCyclesRule` and
`KnownFragmentNamesRule` report those documents, so the summaries need only end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)

Summary = TypeVar("Summary")


@dataclass(slots=True)
class WalkCounter:
    """Fragment selection sets walked in this process: tests check the work is linear."""

    fragments: int = 0


WALKS = WalkCounter()


def fragment_definitions(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    """Fragments by name; the first of a duplicated name (`UniqueFragmentNamesRule`)."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in document.definitions:
        if isinstance(definition, FragmentDefinitionNode):
            fragments.setdefault(definition.name.value, definition)
    return fragments


def summarize_fragments(
    fragments: Mapping[str, FragmentDefinitionNode],
    summarize: Callable[[FragmentDefinitionNode, Mapping[str, Summary]], Summary],
) -> dict[str, Summary]:
    """Each fragment's summary, computed once from the summaries of those it spreads."""
    summaries: dict[str, Summary] = {}
    for fragment in _dependencies_first(fragments):
        WALKS.fragments += 1
        summaries[fragment.name.value] = summarize(fragment, summaries)
    return summaries


def _dependencies_first(
    fragments: Mapping[str, FragmentDefinitionNode],
) -> list[FragmentDefinitionNode]:
    """Every fragment after the ones it spreads: an iterative depth-first search, so a
    long chain cannot exhaust the stack; a spread back into the path is skipped."""
    order: list[FragmentDefinitionNode] = []
    state: dict[str, bool] = {}  # False: on the current path; True: placed in `order`
    for root in fragments:
        if root in state:
            continue
        state[root] = False
        path: list[tuple[str, Iterator[str]]] = [(root, _spread_names(fragments[root]))]
        while path:
            name, pending = path[-1]
            child = next(pending, None)
            if child is None:
                path.pop()
                state[name] = True
                order.append(fragments[name])
            elif child in fragments and child not in state:
                state[child] = False
                path.append((child, _spread_names(fragments[child])))
    return order


def _spread_names(fragment: FragmentDefinitionNode) -> Iterator[str]:
    WALKS.fragments += 1
    pending: list[SelectionSetNode] = [fragment.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                yield selection.name.value
            elif (
                isinstance(selection, (FieldNode, InlineFragmentNode))
                and selection.selection_set is not None
            ):
                pending.append(selection.selection_set)
