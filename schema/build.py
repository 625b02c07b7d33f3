"""Builds the Strawberry schema with Confab's extensions and limits."""

from __future__ import annotations

from collections.abc import Callable

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.types import ExecutionContext

from graphql import ASTValidationRule, GraphQLError
from schema.errors import DomainErrors
from settings import Settings


class ConfabSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """`DomainErrors` already logged what was unexpected; expected errors are not news."""


def build_schema(
    settings: Settings,
    query: type,
    mutation: type | None = None,
    subscription: type | None = None,
) -> strawberry.Schema:
    return ConfabSchema(
        query=query,
        mutation=mutation,
        subscription=subscription,
        extensions=schema_extensions(settings),
    )


def schema_extensions(settings: Settings) -> list[Callable[[], SchemaExtension] | type]:
    """Extension factories: Strawberry builds fresh instances per operation.

    The depth and alias rules are built once here. `QueryDepthLimiter` and
    `MaxAliasesLimiter` make a new rule class per instance, and the rule classes are
    part of `ValidationCache`'s key, so per-operation limiters would never hit it.
    """
    cache_size = settings.graphql_cache_size
    limits: list[type[ASTValidationRule]] = [
        query_depth_limiter.create_validator(settings.graphql_max_depth, None),
        max_aliases.create_validator(settings.graphql_max_aliases),
    ]
    return [
        lambda: ParserCache(maxsize=cache_size),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(maxsize=cache_size),
        DomainErrors,
    ]
