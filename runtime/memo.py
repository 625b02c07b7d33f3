"""A bounded memo for values that depend on nothing but their key."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from runtime.records import MessageRecord

# Stored messages are memoized only while small, so that a memo of them holds a
# few MiB at most, never copies of long answers or large tool outputs.
MESSAGE_MEMO_CAPACITY = 10_000
MESSAGE_MEMO_MAX_CHARS = 2_048

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """`get(key, make)`: the value made for `key` before, or `make()` now.

    Least recently used entries go first once `capacity` is reached; a `make`
    that raises stores nothing. Only for values that depend on nothing but the key
    (a stored message never changes, so what it renders to never does; a query
    text always parses to the same document), and that callers never mutate.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._values: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        values = self._values
        try:
            value = values[key]
        except KeyError:
            value = values[key] = make()
            if len(values) > self._capacity:
                values.popitem(last=False)
            return value
        values.move_to_end(key)
        return value

    def __len__(self) -> int:
        return len(self._values)


def memoizable(message: MessageRecord) -> bool:
    """Small enough for a memo of stored messages (see `MESSAGE_MEMO_MAX_CHARS`)."""
    return (
        len(message.content) <= MESSAGE_MEMO_MAX_CHARS
        and not message.tool_calls
        and not message.tool_results
    )
