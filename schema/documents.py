"""Operations parsed (with a token limit), validated (with Confab's rules) and
compiled for their cost (schema/cost.py) once per distinct query text.

Strawberry's stock extensions do the same in four parts (`ParserCache`,
`MaxTokensLimiter`, `AddValidationRules`, `ValidationCache`): four extension
instances and their hooks set up on every request, which cost a small query more
than its parse and validation ever did. This is one extension with two hooks and a
cache per schema, so two apps built with different limits never share entries.

The cost is checked here for every operation that takes Strawberry's path
(subscriptions, and anything sent over WebSockets, SSE or multipart), right after
validation, so an operation over the limit never starts; `ConfabSchema.execute` does
the same on its lean path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from runtime.memo import Memo
from schema.cost import DocumentCost, cost_error, cost_report, document_cost
from schema.errors import to_graphql_error
from schema.session_reads import SessionReadPlan


@dataclass(slots=True)
class PreparedDocument:
    document: DocumentNode
    errors: list[GraphQLError] | None = field(default=None)  # None: not validated yet
    cost: DocumentCost | None = field(default=None)  # None: not compiled yet
    # Operation names found in the trusted set (schema/persisted.py); None: none yet.
    trusted: set[str | None] | None = field(default=None)
    # Per operation name, its session-read plan or None (schema/session_reads.py).
    session_reads: dict[str | None, SessionReadPlan | None] = field(default_factory=dict)


class PreparedDocuments:
    """An LRU of query text -> parsed document, its validation errors and its cost."""

    def __init__(
        self,
        *,
        max_tokens: int,
        rules: Sequence[type[ASTValidationRule]],
        maxsize: int,
        max_cost: int,
    ) -> None:
        self._max_tokens = max_tokens
        self._rules = tuple(rules)
        self.max_cost = max_cost
        self._entries: Memo[str, PreparedDocument] = Memo(maxsize)

    def parsed(self, query: str) -> PreparedDocument:
        """Raises graphql-core's syntax error (including the token limit); not cached."""
        return self._entries.get(
            query, lambda: PreparedDocument(parse(query, max_tokens=self._max_tokens))
        )

    def errors(
        self,
        entry: PreparedDocument,
        schema: GraphQLSchema,
        standard_rules: Sequence[type[ASTValidationRule]],
    ) -> list[GraphQLError]:
        if entry.errors is None:
            entry.errors = validate(schema, entry.document, (*standard_rules, *self._rules))
        return entry.errors

    def cost(
        self,
        entry: PreparedDocument,
        schema: GraphQLSchema,
        operation_name: str | None,
        variables: Mapping[str, object] | None,
    ) -> int:
        """Of a document without validation errors (compiled on first use)."""
        if entry.cost is None:
            entry.cost = document_cost(schema, entry.document)
        return entry.cost.cost(operation_name, variables)

    def extension(self) -> SchemaExtension:
        """A fresh extension for one operation, as Strawberry expects of a factory."""
        return _UsePreparedDocuments(self)


class _UsePreparedDocuments(SchemaExtension):
    def __init__(self, documents: PreparedDocuments) -> None:
        self._documents = documents
        self._entry: PreparedDocument | None = None
        self._cost: int | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            try:
                self._entry = self._documents.parsed(context.query)
            except GraphQLError as error:
                # Raised from this hook, the error skips `DomainErrors` (Strawberry
                # catches it outside the operation), so it leaves with its code here,
                # as on the lean path.
                raise to_graphql_error(error) from None
            context.graphql_document = self._entry.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        # A document handed over already parsed is validated here too (uncached),
        # so no path skips Confab's rules.
        entry = self._entry
        if entry is None and context.graphql_document is not None:
            entry = PreparedDocument(context.graphql_document)
        if entry is not None:
            documents = self._documents
            schema = context.schema._schema
            errors = documents.errors(entry, schema, context.validation_rules)
            if not errors:
                cost = documents.cost(entry, schema, context.operation_name, context.variables)
                if cost > documents.max_cost:
                    errors = [cost_error(cost, documents.max_cost)]
                self._cost = cost
            context.pre_execution_errors = errors
        yield

    def get_results(self) -> dict[str, Any]:
        """The cost in a query's or mutation's `extensions`; a subscription's events
        leave it out (most of them are rendered once for every subscriber)."""
        if self._cost is None or self._is_subscription():
            return {}
        return cost_report(self._cost, self._documents.max_cost)

    def _is_subscription(self) -> bool:
        try:
            return self.execution_context.operation_type is OperationType.SUBSCRIPTION
        except RuntimeError:  # no such operation: there is no cost either
            return True
