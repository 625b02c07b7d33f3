"""An operation's cost, known before it runs: about how many fields it may resolve.

The model:

- Every field selected costs 1 for each object it is resolved on, so a field's cost
  is 1 times the product of the page sizes of the lists around it.
- A field with a `first` or `last` argument asks for a page: the larger of the two
  given, otherwise the argument's default in the schema, otherwise the resolvers'
  default page (50), capped at their maximum (200). On a connection (the field
  returns an object) the page sizes the connection's lists, `edges` and `nodes`, not
  its `pageInfo`; on a list (`systemEvents`) it sizes the list itself.
- A list without a page argument (a session's threads, the caller's apps) counts as
  `UNPAGED_LIST_SIZE` items.
- Introspection fields cost 1: their size is the schema's, and graphql-core bounds
  their depth. `@skip`/`@include` are ignored (the cost is an upper bound), and each
  fragment spread counts again, as each alias does.

So `session(id:) { title messages(last: 20) { nodes { id content } } }` costs
1 + 1 + 1 + 1 + 20 x 2 = 44, and 30 aliases of `sessions(first: 200)` with
`messages(first: 200)` inside cost millions.

Page sizes can come from variables (`first: $n`), so a document compiles once into a
small program (schema/cost_program.py), cached with the parsed document: each
fragment is compiled once (schema/fragments.py) and shared wherever it is spread,
constants are folded, and an operation whose pages are all literals has its cost as a
plain int. Any other is evaluated in one pass over its program, and remembered per
value of its page variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
)
from schema.cost_program import (
    Accumulator,
    OperationCost,
    PageSize,
    Program,
    Value,
    Variables,
)
from schema.fragments import fragment_definitions, summarize_fragments
from schema.pagination import DEFAULT_PAGE

# The lists without a page argument are short: a session's threads (the primary one
# and the odd side thread) and a key's apps. An estimate, not a bound: paging
# `Session.threads` would make it one.
UNPAGED_LIST_SIZE = 3
PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True, slots=True)
class Affine:
    """A selection set's cost as `base + P x per_page`, P being the page of the
    connection it is selected on (`UNPAGED_LIST_SIZE` elsewhere): a fragment on a
    connection type does not know which page it will be spread into."""

    base: Value
    per_page: Value


@dataclass(frozen=True, slots=True)
class DocumentCost:
    operations: dict[str | None, OperationCost]  # by name; None: the only operation

    def cost(self, operation_name: str | None, variables: Variables | None) -> int:
        operation = self.operations.get(operation_name)
        return 0 if operation is None else operation.cost(variables)


def document_cost(schema: GraphQLSchema, document: DocumentNode) -> DocumentCost:
    """For a document that passed validation (known fields, no fragment cycles)."""
    compiler = _Compiler(schema, fragment_definitions(document))
    definitions = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operations: dict[str | None, OperationCost] = {}
    for operation in definitions:
        compiled = compiler.operation(operation)
        operations[operation.name.value if operation.name else None] = compiled
        if len(definitions) == 1:
            operations[None] = compiled
    return DocumentCost(operations)


def cost_error(cost: int, maximum: int) -> GraphQLError:
    return GraphQLError(
        f"the operation's cost is {cost}, more than the maximum of {maximum}: "
        "ask for smaller pages (first/last) or fewer fields",
        extensions={"code": "GRAPHQL_VALIDATION_FAILED", "cost": cost, "maxCost": maximum},
    )


def cost_report(cost: int, maximum: int) -> dict[str, object]:
    """The response's `extensions`: what the operation cost, against what it may."""
    return {"cost": {"requested": cost, "maximum": maximum}}


class _Compiler:
    """Compiles fragments once, then each operation, into one growing program."""

    def __init__(
        self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode]
    ) -> None:
        self._schema = schema
        self._program = Program()
        self._fragments = summarize_fragments(fragments, self._fragment)

    def operation(self, operation: OperationDefinitionNode) -> OperationCost:
        root = self._schema.get_root_type(operation.operation)
        start = len(self._program.sums)
        total = Accumulator()
        if root is not None:
            shape = self._selection_set(operation.selection_set, root, self._fragments)
            total.add(shape.base)
            total.add(shape.per_page, UNPAGED_LIST_SIZE)
        value = self._program.value(total)
        program = tuple(self._program.sums)
        # The next operation reuses these places: its program holds the fragments'
        # sums and its own only.
        del self._program.sums[start:]
        variables = {
            name
            for node in program
            for term in node.terms
            if term.page is not None
            for name in term.page.variable_names()
        }
        defaults = {
            d.variable.name.value: int(d.default_value.value)
            for d in operation.variable_definitions or ()
            if isinstance(d.default_value, IntValueNode)
        }
        return OperationCost(value, program, defaults, tuple(sorted(variables)))

    def _fragment(
        self, fragment: FragmentDefinitionNode, fragments: Mapping[str, Affine]
    ) -> Affine:
        parent = self._schema.get_type(fragment.type_condition.name.value)
        return self._selection_set(fragment.selection_set, parent, fragments)

    def _selection_set(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType | None,
        fragments: Mapping[str, Affine],
    ) -> Affine:
        """Recursive over nested selection sets only (at most 200, the parser's
        limit); a spread adds its fragment's compiled cost."""
        base, per_page = Accumulator(), Accumulator()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self._field(selection, parent, fragments, base, per_page)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._selection_set(
                    selection.selection_set,
                    parent if condition is None else self._schema.get_type(condition.name.value),
                    fragments,
                )
            elif isinstance(selection, FragmentSpreadNode):
                found = fragments.get(selection.name.value)
                if found is None:
                    continue  # unknown or cyclic: validation reported it
                inner = found
            else:  # pragma: no cover - the three kinds of selection
                continue
            base.add(inner.base)
            per_page.add(inner.per_page)
        return Affine(self._program.value(base), self._program.value(per_page))

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType | None,
        fragments: Mapping[str, Affine],
        base: Accumulator,
        per_page: Accumulator,
    ) -> None:
        base.add(1)
        name = node.name.value
        if node.selection_set is None or name.startswith("__"):
            return
        definition = _field_definition(parent, name)
        if definition is None:
            return  # unknown: validation reported it
        inner = self._selection_set(node.selection_set, get_named_type(definition.type), fragments)
        page = _page(node, definition)
        weight, variable = (page, None) if isinstance(page, int) else (1, page)
        if not isinstance(get_nullable_type(definition.type), GraphQLList):
            # An object: a connection's lists are its page; a plain object's unpaged.
            base.add(inner.base)
            if page is None:
                base.add(inner.per_page, UNPAGED_LIST_SIZE)
            else:
                base.add(inner.per_page, weight, variable)
        elif page is None:  # a list in a connection (P items), or an unpaged one
            per_page.add(inner.base)
            per_page.add(inner.per_page, UNPAGED_LIST_SIZE)
        else:  # a paged list
            base.add(inner.base, weight, variable)
            base.add(inner.per_page, weight * UNPAGED_LIST_SIZE, variable)


def _field_definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None


def _page(node: FieldNode, definition: GraphQLField) -> int | PageSize | None:
    """The page the field asks for (an int when no variable decides it), or None."""
    declared = [definition.args[a] for a in PAGE_ARGUMENTS if a in definition.args]
    if not declared:
        return None
    defaults = [a.default_value for a in declared if isinstance(a.default_value, int)]
    given = {a.name.value: a.value for a in node.arguments or () if a.name.value in PAGE_ARGUMENTS}
    page = PageSize(
        _argument(given.get("first")),
        _argument(given.get("last")),
        max(defaults) if defaults else DEFAULT_PAGE,
    )
    return page if page.variable_names() else page.size({})


def _argument(value: ValueNode | None) -> int | str | None:
    if isinstance(value, VariableNode):
        return value.name.value
    if isinstance(value, IntValueNode):
        return int(value.value)
    return None  # absent or null: the default page
