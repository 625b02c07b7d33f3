"""Operations parsed (with a token limit) and validated (with Confab's rules) once
per distinct query text.

Strawberry's stock extensions do the same in four parts (`ParserCache`,
`MaxTokensLimiter`, `AddValidationRules`, `ValidationCache`): four extension
instances and their hooks set up on every request, which cost a small query more
than its parse and validation ever did. This is one extension with two hooks and a
cache per schema, so two apps built with different limits never share entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from strawberry.extensions import SchemaExtension

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from runtime.memo import Memo


@dataclass(slots=True)
class PreparedDocument:
    document: DocumentNode
    errors: list[GraphQLError] | None = field(default=None)  # None: not validated yet


class PreparedDocuments:
    """An LRU of query text -> parsed document and its validation errors."""

    def __init__(
        self, *, max_tokens: int, rules: Sequence[type[ASTValidationRule]], maxsize: int
    ) -> None:
        self._max_tokens = max_tokens
        self._rules = tuple(rules)
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

    def extension(self) -> SchemaExtension:
        """A fresh extension for one operation, as Strawberry expects of a factory."""
        return _UsePreparedDocuments(self)


class _UsePreparedDocuments(SchemaExtension):
    def __init__(self, documents: PreparedDocuments) -> None:
        self._documents = documents
        self._entry: PreparedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            self._entry = self._documents.parsed(context.query)
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
            context.pre_execution_errors = self._documents.errors(
                entry, context.schema._schema, context.validation_rules
            )
        yield
