"""Confab's lean execution path answers exactly as Strawberry's own.

`ConfabSchema.execute` (schema/build.py) skips Strawberry's `execute`: it parses,
validates, checks the cost and maps errors itself, and runs graphql-core with
`ConfabExecutor` (schema/execution.py). Here every query and mutation of
graphql/operations/ and every class of error is run both ways on the real schema of
an in-process app (SQLite, the test apps), with the same context, and the answers
must match: `data`, each error as formatted (message, locations, path, extensions
with their `code`) and the response's `extensions` (the cost).

The reference is `strawberry.Schema.execute` of the same schema with Strawberry's
stock executor: the same types, extensions (the prepared documents, `DomainErrors`)
and limits, none of Confab's shortcuts.

- Queries run against one prepared state: lean, stock, lean again.
- A mutation changes what it runs on, so each path gets a fresh state prepared the
  same way, and the answers are compared with what differs by creation (UUIDs,
  wallets, stored ids, timestamps) replaced by placeholders in order of appearance.
- Errors leave the state alone and run like queries.

`test_the_lean_path_handles_every_configured_extension` keeps the premise true: the
lean path reproduces exactly the extensions it knows, so a new one added to the
schema (which it would silently skip) fails here until the lean path handles it.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionResult

from graphql import OperationDefinitionNode, OperationType, parse
from runtime import keys
from runtime.errors import ConfabError
from schema.build import ConfabSchema
from schema.context import Context
from schema.errors import DomainErrors
from schema.view import ConfabGraphQL
from server import create_app
from settings import Settings, load_apps
from tests.conftest import new_id, new_wallet, started

OPERATIONS_DIR = Path(__file__).resolve().parent.parent / "graphql" / "operations"
# Low enough for a query of the real schema to exceed it (the default, 12, is deeper
# than any path through the schema); every operation in graphql/operations/ fits.
MAX_DEPTH = 5
CLIENT = "127.0.0.1"


def _operations() -> dict[str, tuple[str, OperationType]]:
    """Each named operation of graphql/operations/: its file's text and its type."""
    found: dict[str, tuple[str, OperationType]] = {}
    for path in sorted(OPERATIONS_DIR.glob("*.graphql")):
        text = path.read_text(encoding="utf-8")
        for definition in parse(text).definitions:
            if isinstance(definition, OperationDefinitionNode):
                assert definition.name is not None, f"an anonymous operation in {path.name}"
                found[definition.name.value] = (text, definition.operation)
    return found


OPERATIONS = _operations()


# -- the app, its schema, the callers ------------------------------------------------


@dataclass
class State:
    """One session as a frontend leaves it: a wallet, a side thread, some history."""

    session_id: str
    wallet: str
    side_thread_id: str = ""
    primary_thread_id: str = ""
    oldest_cursor: str | None = None  # the newest message's cursor (OlderMessages' before)
    first_session_cursor: str | None = None  # WalletSessions' first cursor
    memory_id: str = ""  # one memory of the wallet (ForgetMemory's)


@dataclass
class Harness:
    schema: ConfabSchema
    stock: strawberry.Schema
    contexts: dict[str, Context]
    history: State = field(init=False)

    async def lean(
        self,
        query: str | None,
        variables: Mapping[str, Any] | None = None,
        context: str = "alpha",
        operation_name: str | None = None,
    ) -> ExecutionResult:
        return await self.schema.execute(
            query,
            variable_values=None if variables is None else dict(variables),
            context_value=self.contexts[context],
            operation_name=operation_name,
        )

    async def strawberry(
        self,
        query: str | None,
        variables: Mapping[str, Any] | None = None,
        context: str = "alpha",
        operation_name: str | None = None,
    ) -> ExecutionResult:
        # Strawberry's own `execute`, not ConfabSchema's override.
        return await strawberry.Schema.execute(
            self.stock,
            query,
            variable_values=None if variables is None else dict(variables),
            context_value=self.contexts[context],
            operation_name=operation_name,
        )

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """Setup only (not under test): the lean path's data, without errors."""
        result = await self.lean(query, variables)
        assert not result.errors, result.errors
        assert result.data is not None
        return result.data

    async def prepare(self, *, history: bool) -> State:
        """A fresh session bound to a fresh wallet, with a side thread; with `history`,
        a finished chat turn too (so it has messages)."""
        state = State(session_id=new_id(), wallet=new_wallet())
        await self.data(
            "mutation($id: ID!, $k: String) { createSession(id: $id, publicKey: $k) { id } }",
            id=state.session_id,
            k=state.wallet,
        )
        if history:
            await self.data(
                'mutation($s: ID!) { sendMessage(sessionId: $s, content: "hello there") { id } }',
                s=state.session_id,
            )
            await self._until_idle(state.session_id)
        created = await self.data(
            'mutation($s: ID!) { createThread(sessionId: $s, title: "side") { id } }',
            s=state.session_id,
        )
        state.side_thread_id = created["createThread"]["id"]
        session = await self.data(
            "query($s: ID!) { session(id: $s) { threads { id isPrimary } "
            "messages(last: 1) { pageInfo { startCursor } } } }",
            s=state.session_id,
        )
        threads = session["session"]["threads"]
        state.primary_thread_id = next(t["id"] for t in threads if t["isPrimary"])
        state.oldest_cursor = session["session"]["messages"]["pageInfo"]["startCursor"]
        sessions = await self.data(
            "query($k: String!) { sessions(publicKey: $k) { edges { cursor } } }", k=state.wallet
        )
        state.first_session_cursor = sessions["sessions"]["edges"][0]["cursor"]
        memory = await self.contexts["alpha"].runtime.store.add_memory(
            "alpha", state.wallet, UUID(state.session_id), "likes tea", cascade=True
        )
        state.memory_id = str(memory.id)
        return state

    async def _until_idle(self, session_id: str) -> None:
        for _ in range(400):
            found = await self.data(
                "query($s: ID!) { session(id: $s) { isProcessing } }", s=session_id
            )
            if not found["session"]["isProcessing"]:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"session {session_id} never stopped processing")


class _BrokenRuntime:
    """A runtime whose every part fails unexpectedly: the errors are masked."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"the runtime's {name} is broken")


def _schema_of(app: Starlette) -> ConfabSchema:
    for route in app.routes:
        if isinstance(route, WebSocketRoute) and isinstance(route.app, ConfabGraphQL):
            schema = route.app.schema
            assert isinstance(schema, ConfabSchema)
            return schema
    raise AssertionError("no GraphQL route")


def _stock(schema: ConfabSchema) -> strawberry.Schema:
    """The same schema (types, extensions, limits) with Strawberry's stock executor."""
    reference = copy.copy(schema)
    reference.execution_context_class = StrawberryGraphQLCoreExecutionContext
    return reference


async def _context(app: Starlette, key: str | None, requested_app: str | None) -> Context:
    """A context as the HTTP view builds it (schema/view.py), auth failures kept."""
    runtime = app.state.runtime
    context = Context(runtime=runtime, client=CLIENT)
    try:
        context.authenticated_as(await runtime.apps.authenticate(key, requested_app, CLIENT))
    except ConfabError as error:
        context.failed_auth(error)
    return context


@pytest.fixture(scope="module")
async def harness(
    tmp_path_factory: pytest.TempPathFactory, apps_file: Path
) -> AsyncIterator[Harness]:
    path = tmp_path_factory.mktemp("equivalence") / "confab.sqlite3"
    settings = Settings(
        database_url=f"sqlite://{path}",
        auto_migrate=True,
        config_file=str(apps_file),
        apps=load_apps(apps_file),
        graphql_max_depth=MAX_DEPTH,
    )
    application = create_app(settings)
    async with started(application):
        alpha_key, _ = await keys.create_key(["alpha"], "tests")
        alpha = await _context(application, alpha_key, None)
        broken = Context(runtime=_BrokenRuntime(), client=CLIENT)  # type: ignore[arg-type]
        broken.authenticated_as(alpha.caller)
        contexts = {
            "alpha": alpha,
            # The key does not cover the app asked for.
            "forbidden": await _context(application, alpha_key, "beta"),
            # A keyed app asked for without a key, and a key nobody issued.
            "no key": await _context(application, None, "alpha"),
            "unknown key": await _context(application, "confab_not-a-real-key", None),
            "broken": broken,
        }
        schema = _schema_of(application)
        built = Harness(schema=schema, stock=_stock(schema), contexts=contexts)
        built.history = await built.prepare(history=True)
        yield built


# -- comparing answers ---------------------------------------------------------------


def answer(result: ExecutionResult) -> dict[str, Any]:
    """What a client receives: data, errors as formatted, the extensions."""
    return {
        "data": result.data,
        "errors": [error.formatted for error in result.errors or []],
        "extensions": result.extensions or {},
    }


def codes(result: ExecutionResult) -> list[str | None]:
    return [(error.extensions or {}).get("code") for error in result.errors or []]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_WALLET = re.compile(r"0x[0-9a-fA-F]{40}")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")
_STORED_IDS = frozenset({"id", "eventId", "cursor"})  # integer ids assigned by the store


def normalized(value: Any) -> Any:
    """`value` with what depends on creation (UUIDs, wallets, stored integer ids,
    timestamps) replaced by placeholders numbered in order of first appearance, so
    that two states prepared alike compare equal, and a value repeated within one
    answer stays recognisably the same."""
    seen: dict[str, str] = {}

    def token(kind: str, text: str) -> str:
        return seen.setdefault(f"{kind}:{text}", f"<{kind} {len(seen)}>")

    def text_of(text: str, key: str | None) -> str:
        if _TIMESTAMP.fullmatch(text):
            return "<timestamp>"
        if key in _STORED_IDS and text.isdigit():
            return token("stored id", text)
        text = _UUID.sub(lambda m: token("uuid", m.group()), text)
        return _WALLET.sub(lambda m: token("wallet", m.group().lower()), text)

    def walk(item: Any, key: str | None) -> Any:
        if isinstance(item, dict):
            return {k: walk(v, k) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v, key) for v in item]
        if isinstance(item, str):
            return text_of(item, key)
        return item

    return walk(value, None)


# -- the corpus: every query and mutation of graphql/operations/ ----------------------

Variables = Callable[[State], dict[str, Any]]


@dataclass(frozen=True)
class Run:
    operation: str  # its name in graphql/operations/
    variables: Variables
    label: str = ""

    @property
    def id(self) -> str:
        return f"{self.operation}-{self.label}" if self.label else self.operation


READS = [
    Run("Session", lambda s: {"id": s.session_id}),
    Run("Session", lambda s: {"id": new_id()}, "unknown session: null"),
    Run("WalletSessions", lambda s: {"publicKey": s.wallet}),
    Run(
        "WalletSessions",
        lambda s: {"publicKey": s.wallet, "after": s.first_session_cursor},
        "after",
    ),
    Run("OlderMessages", lambda s: {"threadId": s.primary_thread_id}),
    Run(
        "OlderMessages",
        lambda s: {"threadId": s.primary_thread_id, "before": s.oldest_cursor},
        "before",
    ),
    Run("OlderMessages", lambda s: {"threadId": s.side_thread_id}, "empty thread"),
    Run("AppsAndModels", lambda s: {}),
    Run("WalletMemory", lambda s: {"publicKey": s.wallet}),
    Run("SessionContext", lambda s: {"id": s.session_id}),
    Run("Search", lambda s: {"query": "hello", "publicKey": s.wallet}),
    Run("Search", lambda s: {"query": "hello", "publicKey": s.wallet, "first": 1}, "a page"),
]

MUTATIONS = [
    Run("CreateSession", lambda s: {"id": new_id(), "publicKey": s.wallet}),
    Run("CreateSession", lambda s: {}, "server-chosen id"),
    Run("CreateSession", lambda s: {"id": s.session_id}, "idempotent"),
    Run("RenameSession", lambda s: {"id": s.session_id, "title": "Renamed"}),
    Run("ArchiveSession", lambda s: {"id": s.session_id}),
    Run("UnarchiveSession", lambda s: {"id": s.session_id}),
    Run("PinSession", lambda s: {"id": s.session_id}),
    Run("UnpinSession", lambda s: {"id": s.session_id}),
    Run("DeleteSession", lambda s: {"id": s.session_id}),
    Run("BindWallet", lambda s: {"sessionId": s.session_id, "publicKey": new_wallet()}),
    Run("BindWallet", lambda s: {"sessionId": s.session_id, "publicKey": None}, "unbind"),
    Run(
        "UpdateUserState",
        lambda s: {"sessionId": s.session_id, "userState": {"chain": 1, "connected": True}},
    ),
    Run("UpdateMetadata", lambda s: {"sessionId": s.session_id, "metadata": {"plan": "pro"}}),
    Run(
        "UpdateMetadata",
        lambda s: {"sessionId": s.session_id, "metadata": {"x": [1, 2]}, "merge": True},
        "merge",
    ),
    Run("SendMessage", lambda s: {"sessionId": s.session_id, "content": "what is 2 + 2?"}),
    Run("Interrupt", lambda s: {"sessionId": s.session_id}),
    Run("SelectModel", lambda s: {"sessionId": s.session_id, "model": "builtin-large"}),
    Run("PostSystemNotice", lambda s: {"sessionId": s.session_id, "message": "maintenance"}),
    Run("CreateThread", lambda s: {"sessionId": s.session_id, "title": "another"}),
    Run("RenameThread", lambda s: {"id": s.side_thread_id, "title": "renamed"}),
    Run("DeleteThread", lambda s: {"id": s.side_thread_id}),
    Run("ForgetMemory", lambda s: {"id": s.memory_id}),
    Run("ForgetWallet", lambda s: {"publicKey": s.wallet}),
]


def test_the_corpus_covers_every_query_and_mutation() -> None:
    runnable = {
        name
        for name, (_, kind) in OPERATIONS.items()
        if kind in (OperationType.QUERY, OperationType.MUTATION)
    }
    reads = {run.operation for run in READS}
    writes = {run.operation for run in MUTATIONS}
    assert reads | writes == runnable
    assert all(OPERATIONS[name][1] is OperationType.QUERY for name in reads)
    assert all(OPERATIONS[name][1] is OperationType.MUTATION for name in writes)


@pytest.mark.parametrize("run", READS, ids=lambda run: run.id)
async def test_a_query_answers_as_strawberry_does(harness: Harness, run: Run) -> None:
    text, _ = OPERATIONS[run.operation]
    variables = run.variables(harness.history)
    first = await harness.lean(text, variables, operation_name=run.operation)
    stock = await harness.strawberry(text, variables, operation_name=run.operation)
    again = await harness.lean(text, variables, operation_name=run.operation)
    assert not first.errors, first.errors
    assert answer(first) == answer(stock) == answer(again)


@pytest.mark.parametrize("run", MUTATIONS, ids=lambda run: run.id)
async def test_a_mutation_answers_as_strawberry_does(harness: Harness, run: Run) -> None:
    text, _ = OPERATIONS[run.operation]
    lean_state = await harness.prepare(history=False)
    stock_state = await harness.prepare(history=False)
    lean = await harness.lean(text, run.variables(lean_state), operation_name=run.operation)
    stock = await harness.strawberry(text, run.variables(stock_state), operation_name=run.operation)
    assert not lean.errors, lean.errors
    assert normalized(answer(lean)) == normalized(answer(stock))


# -- every class of error ------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    label: str
    query: str
    variables: Variables
    expected: list[str | None]  # the codes of the errors, in order
    context: str = "alpha"
    operation_name: str | None = None


def _named(operation: str, variables: Variables, expected: str, context: str = "alpha") -> Failure:
    """One of graphql/operations/ that fails with one error of the code `expected`."""
    return Failure(
        label=f"{operation} {expected}",
        query=OPERATIONS[operation][0],
        variables=variables,
        expected=[expected],
        context=context,
        operation_name=operation,
    )


TOO_DEEP = "{ sessions { edges { node { messages(last: 1) { edges { node { id } } } } } } }"
TOO_COSTLY = (
    "{ sessions(first: 200) { nodes { id messages(first: 200) { nodes { id content } } } } }"
)
TOO_MANY_ALIASES = "{ " + " ".join(f"a{n}: models" for n in range(31)) + " }"
TOO_MANY_TOKENS = "{ " + "models " * 2_100 + "}"

FAILURES = [
    # Before execution: the document and the variables.
    Failure("syntax error", "query { models", lambda s: {}, ["GRAPHQL_VALIDATION_FAILED"]),
    Failure("unknown field", "{ nope }", lambda s: {}, ["GRAPHQL_VALIDATION_FAILED"]),
    Failure(
        "unknown field, nested",
        "query($id: ID!) { session(id: $id) { id colour } }",
        lambda s: {"id": s.session_id},
        ["GRAPHQL_VALIDATION_FAILED"],
    ),
    Failure(
        "argument of the wrong type",
        '{ sessions(first: "ten") { nodes { id } } }',
        lambda s: {},
        ["GRAPHQL_VALIDATION_FAILED"],
    ),
    Failure(
        "two validation errors",
        "{ nope apps { colour } }",
        lambda s: {},
        ["GRAPHQL_VALIDATION_FAILED", "GRAPHQL_VALIDATION_FAILED"],
    ),
    Failure("too deep", TOO_DEEP, lambda s: {}, ["GRAPHQL_VALIDATION_FAILED"]),
    Failure("too many aliases", TOO_MANY_ALIASES, lambda s: {}, ["GRAPHQL_VALIDATION_FAILED"]),
    Failure("too many tokens", TOO_MANY_TOKENS, lambda s: {}, ["GRAPHQL_VALIDATION_FAILED"]),
    Failure("too costly", TOO_COSTLY, lambda s: {}, ["GRAPHQL_VALIDATION_FAILED"]),
    Failure(
        "too costly by a variable",
        "query($n: Int!) {"
        " sessions(first: $n) { nodes { id messages(first: $n) { nodes { id } } } } }",
        lambda s: {"n": 200},
        ["GRAPHQL_VALIDATION_FAILED"],
    ),
    _named("Session", lambda s: {}, "BAD_USER_INPUT"),  # a required variable missing
    _named("Session", lambda s: {"id": {"not": "an id"}}, "BAD_USER_INPUT"),
    _named("WalletSessions", lambda s: {"publicKey": ["a", "list"]}, "BAD_USER_INPUT"),
    _named(
        "UpdateMetadata",
        lambda s: {"sessionId": s.session_id, "metadata": {}, "merge": "yes"},
        "BAD_USER_INPUT",
    ),
    # While fields run: the domain's errors.
    _named("Session", lambda s: {"id": "not-a-uuid"}, "INVALID_INPUT"),
    _named("RenameSession", lambda s: {"id": s.session_id, "title": ""}, "INVALID_INPUT"),
    _named("SelectModel", lambda s: {"sessionId": s.session_id, "model": "gpt-x"}, "INVALID_INPUT"),
    _named("DeleteSession", lambda s: {"id": new_id()}, "NOT_FOUND"),
    _named("RenameThread", lambda s: {"id": new_id(), "title": "t"}, "NOT_FOUND"),
    _named("ArchiveSession", lambda s: {"id": new_id()}, "NOT_FOUND"),
    _named("WalletMemory", lambda s: {"publicKey": "nope"}, "INVALID_INPUT"),
    _named("Search", lambda s: {"query": "  "}, "INVALID_INPUT"),
    _named("Search", lambda s: {"query": "x", "after": "nope"}, "INVALID_INPUT"),
    _named("ForgetMemory", lambda s: {"id": new_id()}, "NOT_FOUND"),
    _named("ForgetWallet", lambda s: {"publicKey": new_wallet()}, "NOT_FOUND"),
    _named("Session", lambda s: {"id": s.session_id}, "FORBIDDEN", context="forbidden"),
    _named("AppsAndModels", lambda s: {}, "FORBIDDEN", context="forbidden"),
    _named("Session", lambda s: {"id": s.session_id}, "UNAUTHENTICATED", context="no key"),
    _named(
        "SendMessage",
        lambda s: {"sessionId": s.session_id, "content": "hi"},
        "UNAUTHENTICATED",
        context="unknown key",
    ),
    _named("Session", lambda s: {"id": s.session_id}, "INTERNAL", context="broken"),
    Failure(
        "partial data: one root field fails, the other answers",
        'query($id: ID!) { models session(id: "not-a-uuid") { id }'
        " again: session(id: $id) { id } }",
        lambda s: {"id": s.session_id},
        ["INVALID_INPUT"],
    ),
    Failure(
        "partial data: two errors in one answer",
        '{ apps { name } a: session(id: "x") { id } b: thread(id: "y") { id } }',
        lambda s: {},
        ["INVALID_INPUT", "INVALID_INPUT"],
    ),
]

# Every code an operation's answer can carry (runtime/errors.py, schema/errors.py,
# schema/cost.py); a code no client can provoke through GraphQL needs no case here.
REQUIRED_CODES = {
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "INVALID_INPUT",
    "NOT_FOUND",
    "FORBIDDEN",
    "UNAUTHENTICATED",
    "INTERNAL",
}


def test_the_corpus_covers_every_class_of_error() -> None:
    assert {code for failure in FAILURES for code in failure.expected} >= REQUIRED_CODES


@pytest.mark.parametrize("failure", FAILURES, ids=lambda failure: failure.label)
async def test_an_error_answers_as_strawberry_does(harness: Harness, failure: Failure) -> None:
    variables = failure.variables(harness.history)
    arguments = (failure.query, variables, failure.context, failure.operation_name)
    lean = await harness.lean(*arguments)
    stock = await harness.strawberry(*arguments)
    assert codes(lean) == failure.expected, lean.errors
    assert answer(lean) == answer(stock)


@pytest.mark.parametrize(
    ("query", "operation_name", "refusal"),
    [
        (None, None, MissingQueryError),
        ("", None, MissingQueryError),
        ("query A { models }", "B", CannotGetOperationTypeError),
    ],
)
async def test_a_request_without_an_operation_is_refused_as_strawberry_refuses_it(
    harness: Harness, query: str | None, operation_name: str | None, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        await harness.lean(query, {}, operation_name=operation_name)
    with pytest.raises(refusal):
        await harness.strawberry(query, {}, operation_name=operation_name)


async def test_several_operations_without_a_name_run_none_where_strawberry_runs_the_first(
    harness: Harness,
) -> None:
    """The one deliberate difference: given several operations and no name, the
    GraphQL spec asks for a request error, which the lean path answers; Strawberry's
    own path runs the document's first operation (here a mutation nobody named)."""
    document = OPERATIONS["Session"][0]
    lean = await harness.lean(document, {}, operation_name=None)
    assert lean.data is None
    assert [error.message for error in lean.errors or []] == [
        "Must provide operation name if query contains multiple operations."
    ]
    assert codes(lean) == ["GRAPHQL_VALIDATION_FAILED"]
    stock = await harness.strawberry(document, {}, operation_name=None)
    assert stock.errors is None
    assert stock.data is not None
    assert "createSession" in stock.data


# -- the premise: the lean path skips no extension -----------------------------------


def test_the_lean_path_handles_every_configured_extension(harness: Harness) -> None:
    """`ConfabSchema.execute` does the work of exactly two extensions itself: the
    prepared documents (parse, validation, cost; schema/documents.py) and
    `DomainErrors` (schema/errors.py). Any other one configured on the schema would
    run on Strawberry's paths and silently not on the lean one (a directive too:
    Strawberry adds an extension for it; a `resolve` hook: a middleware)."""
    schema = harness.schema
    assert set(schema.extensions) == {schema.documents.extension, DomainErrors}
    per_operation = schema.get_extensions()
    assert sorted(type(extension).__name__ for extension in per_operation) == sorted(
        [type(schema.documents.extension()).__name__, DomainErrors.__name__]
    )
    assert not schema.directives
