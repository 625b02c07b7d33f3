"""GraphQL execution with one shortcut: objects whose selection is all plain leaves.

graphql-core executes every field of every object on its own: a resolve info, a
call through Strawberry's resolver wrapper, a completion with its type checks. A
snapshot's 20 messages with four fields each are 80 such executions, most of the
query's time. When every field selected on an object is a scalar or enum read
straight off the Python object (Strawberry's "basic" field: no resolver, no field
extension, no exception handler; no middleware either), its result is those
attributes, coerced, and this computes it in one loop.

Plans are kept per request and, where the selection cannot vary with variables,
across requests of the same (cached) document.

Anything else takes graphql-core's path, and so does any object whose shortcut
meets something unusual (a null in a non-null field, a value its scalar refuses,
an exception): the slow path then raises exactly the error it always raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionNode,
    Undefined,
    get_nullable_type,
    is_leaf_type,
)
from runtime.memo import Memo

STRAWBERRY_FIELD = "strawberry-definition"
SHARED_PLANS_CAPACITY = 1_000


@dataclass(frozen=True, slots=True)
class LeafField:
    key: str  # the response key: the alias, or the field's name
    read: Any  # object -> attribute value; None for __typename
    coerce: Any  # the leaf type's coerce_output_value
    nullable: bool


@dataclass(frozen=True, slots=True)
class LeafPlan:
    type_name: str
    fields: tuple[LeafField, ...]

    def complete(self, source: Any) -> dict[str, Any] | None:
        """The object's result, or None where graphql-core must decide (errors included)."""
        completed: dict[str, Any] = {}
        try:
            for field in self.fields:
                if field.read is None:
                    completed[field.key] = self.type_name
                    continue
                value = field.read(source)
                if value is None:
                    if not field.nullable:
                        return None
                    completed[field.key] = None
                    continue
                if isinstance(value, Exception):
                    return None
                coerced = field.coerce(value)
                if coerced is None or coerced is Undefined:
                    return None
                completed[field.key] = coerced
        except Exception:  # the slow path raises it again, as a proper field error
            return None
        return completed


def _leaf_field(key: str, name: str, definition: GraphQLField | None) -> LeafField | None:
    if name == "__typename":
        return LeafField(key, None, None, False)
    if definition is None or definition.args:
        return None
    if not getattr(definition.resolve, "_is_default", False):
        return None  # a resolver, a field extension or an exception handler
    strawberry_field = definition.extensions.get(STRAWBERRY_FIELD)
    if strawberry_field is None or strawberry_field.default_resolver is not getattr:
        return None
    leaf_type = get_nullable_type(definition.type)
    if not is_leaf_type(leaf_type):
        return None
    return LeafField(
        key=key,
        read=attrgetter(strawberry_field.python_name),
        coerce=leaf_type.coerce_output_value,
        nullable=not isinstance(definition.type, GraphQLNonNull),
    )


# Plans that outlive their request, for selections that cannot vary with variables:
# keyed by the identity of the field nodes of a cached document, which each entry
# keeps alive, so that no id is reused while its entry exists.
_SHARED_PLANS: Memo[
    tuple[GraphQLObjectType, tuple[int, ...]], tuple[tuple[FieldNode, ...], LeafPlan | None]
] = Memo(SHARED_PLANS_CAPACITY)


class ConfabExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keyed like graphql-core's own subfield memo: the field group's identity,
        # kept alive beside the plan so that the id cannot be reused meanwhile.
        self._leaf_plans: dict[
            tuple[GraphQLObjectType, int], tuple[FieldDetailsList, LeafPlan | None]
        ] = {}
        middleware = self.middleware_manager
        self._shortcut = middleware is None or middleware.get_field_resolver(getattr) is getattr

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = self._leaf_plan(return_type, field_details_list) if self._shortcut else None
        if plan is not None and (
            return_type.is_type_of is None or return_type.is_type_of(result, info) is True
        ):
            completed = plan.complete(result)
            if completed is not None:
                return completed
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _leaf_plan(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> LeafPlan | None:
        key = (return_type, id(field_details_list))
        cached = self._leaf_plans.get(key)
        if cached is not None:
            return cached[1]
        if self._fixed_selection(field_details_list):
            nodes = tuple(details.node for details in field_details_list)
            plan = _SHARED_PLANS.get(
                (return_type, tuple(map(id, nodes))),
                lambda: (nodes, self._plan(return_type, field_details_list)),
            )[1]
        else:
            plan = self._plan(return_type, field_details_list)
        self._leaf_plans[key] = (field_details_list, plan)
        return plan

    def _fixed_selection(self, field_details_list: FieldDetailsList) -> bool:
        """Whether collecting these fields' subfields cannot depend on variables: no
        directive (`@skip`, `@include`, `@defer`) and no fragment argument on the way."""
        pending: list[SelectionNode] = []
        for details in field_details_list:
            if details.fragment_variable_values is not None:
                return False
            if details.node.selection_set is not None:
                pending.extend(details.node.selection_set.selections)
        while pending:
            selection = pending.pop()
            if selection.directives:
                return False
            if isinstance(selection, InlineFragmentNode):
                pending.extend(selection.selection_set.selections)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is None or fragment.definition.directives:
                    return False
                pending.extend(fragment.definition.selection_set.selections)
        return True

    def _plan(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> LeafPlan | None:
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(
            return_type, field_details_list
        )
        if new_defer_usages:
            return None  # @defer: graphql-core's incremental delivery decides
        fields: list[LeafField] = []
        for key, group in grouped_field_set.items():
            if any(details.defer_usage is not None for details in group):
                return None
            name = group[0].node.name.value
            leaf = _leaf_field(key, name, return_type.fields.get(name))
            if leaf is None:
                return None
            fields.append(leaf)
        return LeafPlan(return_type.name, tuple(fields))
