"""GraphQL root fields. `confab_schema` assembles them into the served schema."""

from __future__ import annotations

import strawberry

from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription
from schema.build import build_schema
from settings import Settings


def confab_schema(settings: Settings) -> strawberry.Schema:
    return build_schema(settings, Query, Mutation, Subscription)


__all__ = ["Mutation", "Query", "Subscription", "confab_schema"]
