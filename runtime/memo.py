"""A bounded memo for values derived from records that never change."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

# Entries per memo of stored messages (a few hundred bytes to a few KiB each).
MESSAGE_MEMO_CAPACITY = 50_000

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """`get(key, make)`: the value made for `key` before, or `make()` now.

    Least recently used entries go first once `capacity` is reached. Only for
    values that depend on nothing but the key (a stored message never changes,
    so what it renders to never does), and that callers never mutate.
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
