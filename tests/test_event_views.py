"""The rule schema/live.py relies on: every type a subscription yields is a pure view
of the bus event, so one rendering serves every subscriber of the same operation
(tests/test_typed_events.py counts the renderings; this keeps the premise true).

Walked from the schema's `Subscription` fields, through every field type (union
members, interfaces and lists included): no resolver may take `info` (the caller,
the context, the request) and none may be async (a view derives from the event in
hand; a coroutine could look something up on the caller's behalf). A field added to
an event type that reads the caller fails here, naming itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition

from graphql import (
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLUnionType,
    get_named_type,
)
from resolvers import confab_schema
from settings import Settings

BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF


def _event_types() -> Iterator[GraphQLObjectType]:
    """Every object type reachable from a subscription field's type."""
    graphql_schema = confab_schema(Settings())._schema
    subscription = graphql_schema.subscription_type
    assert subscription is not None
    pending: list[GraphQLNamedType] = [
        get_named_type(field.type) for field in subscription.fields.values()
    ]
    seen: set[str] = set()
    while pending:
        named = pending.pop()
        if named.name in seen:
            continue
        seen.add(named.name)
        if isinstance(named, GraphQLUnionType):
            pending.extend(named.types)
        elif isinstance(named, GraphQLInterfaceType):
            pending.extend(graphql_schema.get_possible_types(named))
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            pending.extend(get_named_type(field.type) for field in named.fields.values())
        if isinstance(named, GraphQLObjectType):
            yield named


def _callers_readers() -> list[str]:
    found = []
    for graphql_type in _event_types():
        definition = (graphql_type.extensions or {}).get(BACKREF)
        if not isinstance(definition, StrawberryObjectDefinition):
            continue  # introspection and the like
        for field in definition.fields:
            resolver = field.base_resolver
            if resolver is None:
                continue
            if resolver.info_parameter is not None:
                found.append(f"{graphql_type.name}.{field.graphql_name or field.name} takes info")
            if resolver.is_async:
                found.append(f"{graphql_type.name}.{field.graphql_name or field.name} is async")
    return found


def test_the_walk_reaches_the_typed_payloads_and_the_stored_message() -> None:
    names = {graphql_type.name for graphql_type in _event_types()}
    assert {"SessionEvent", "MessageAddedPayload", "CustomEventPayload", "Message"} <= names


def test_no_event_type_reads_the_caller() -> None:
    assert _callers_readers() == []
