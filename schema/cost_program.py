"""The arithmetic of a compiled cost (schema/cost.py): sums of weighted terms, some
scaled by a page size that a variable decides, evaluated in one pass.

A compiled document is a program of `Sum`s in creation order, so each refers only
to earlier ones, and a fragment's sums are shared by every spread of it: evaluating
an operation is one loop over its program, however often its fragments are spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from runtime.validation import PAGE_MAX

REMEMBERED_VARIABLE_VALUES = 64  # per operation; then the memo starts over

Variables = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class PageSize:
    """The page a field asks for when a variable decides it (a literal is folded)."""

    first: int | str | None  # a literal, a variable's name, or not given
    last: int | str | None
    default: int

    def size(self, variables: Variables) -> int:
        given = [
            n
            for n in (_given(self.first, variables), _given(self.last, variables))
            if n is not None
        ]
        return _capped(max(given) if given else self.default)

    def variable_names(self) -> tuple[str, ...]:
        return tuple(arg for arg in (self.first, self.last) if isinstance(arg, str))


@dataclass(frozen=True, slots=True)
class Term:
    weight: int
    page: PageSize | None  # None: 1
    value: int | Sum


@dataclass(frozen=True, slots=True, eq=False)
class Sum:
    """`constant` plus the weighted terms. `index` is its place in the program, after
    every sum it refers to."""

    index: int
    constant: int
    terms: tuple[Term, ...]


Value = int | Sum


class Accumulator:
    """A sum being built: constants add up at once; variable parts become terms."""

    __slots__ = ("constant", "terms")

    def __init__(self) -> None:
        self.constant = 0
        self.terms: list[Term] = []

    def add(self, value: Value, weight: int = 1, page: PageSize | None = None) -> None:
        if isinstance(value, int) and page is None:
            self.constant += weight * value
        elif value != 0 and weight != 0:
            self.terms.append(Term(weight, page, value))


class Program:
    """The sums of one document, each placed after those it refers to."""

    __slots__ = ("sums",)

    def __init__(self) -> None:
        self.sums: list[Sum] = []

    def value(self, sum_: Accumulator) -> Value:
        """The accumulated sum: a plain int when no variable is involved."""
        if not sum_.terms:
            return sum_.constant
        node = Sum(len(self.sums), sum_.constant, tuple(sum_.terms))
        self.sums.append(node)
        return node


@dataclass(slots=True)
class OperationCost:
    total: Value
    program: tuple[Sum, ...]  # the sums `total` may refer to, in order
    defaults: dict[str, int]  # the operation's variable defaults that are page sizes
    variables: tuple[str, ...]  # the variables that size pages
    memo: dict[tuple[object, ...], int] = field(default_factory=dict, repr=False)

    def cost(self, variables: Variables | None) -> int:
        total = self.total
        if isinstance(total, int):
            return total
        effective: Variables = {**self.defaults, **variables} if variables else self.defaults
        key = tuple(effective.get(name) for name in self.variables)
        if not _hashable(key):
            return _evaluate(self.program, total, effective)
        known = self.memo.get(key)
        if known is None:
            known = _evaluate(self.program, total, effective)
            if len(self.memo) >= REMEMBERED_VARIABLE_VALUES:
                self.memo.clear()
            self.memo[key] = known
        return known


def _given(argument: int | str | None, variables: Variables) -> int | None:
    if isinstance(argument, str):
        value = variables.get(argument)
        # Anything but an int fails coercion when the operation runs.
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return argument


def _capped(size: int) -> int:
    # The resolvers refuse a page outside 1..PAGE_MAX: a bigger one never runs.
    return min(max(size, 0), PAGE_MAX)


def _hashable(key: tuple[object, ...]) -> bool:
    return all(value is None or isinstance(value, int) for value in key)


def _evaluate(program: tuple[Sum, ...], total: Sum, variables: Variables) -> int:
    """One pass in program order: every sum's terms are known before it."""
    values = [0] * len(program)
    for node in program:
        result = node.constant
        for term in node.terms:
            value = term.value
            amount = value if isinstance(value, int) else values[value.index]
            if term.page is not None:
                amount *= term.page.size(variables)
            result += term.weight * amount
        values[node.index] = result
    return values[total.index]
