"""The bounded memo behind the message caches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from runtime.memo import MESSAGE_MEMO_MAX_CHARS, Memo, memoizable
from runtime.records import MessageRecord, Role


def test_values_are_made_once_and_the_least_recently_used_go_first() -> None:
    made: list[str] = []
    memo: Memo[str, str] = Memo(2)

    def make(key: str) -> str:
        made.append(key)
        return key.upper()

    assert memo.get("a", lambda: make("a")) == "A"
    assert memo.get("b", lambda: make("b")) == "B"
    assert memo.get("a", lambda: make("a")) == "A"  # a is now the most recent
    assert memo.get("c", lambda: make("c")) == "C"  # evicts b
    assert memo.get("a", lambda: make("a")) == "A"
    assert memo.get("b", lambda: make("b")) == "B"
    assert made == ["a", "b", "c", "b"]
    assert len(memo) == 2


def test_a_make_that_raises_stores_nothing() -> None:
    memo: Memo[str, int] = Memo(4)

    def broken() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        memo.get("k", broken)
    assert len(memo) == 0
    assert memo.get("k", lambda: 1) == 1


def test_only_small_messages_without_tools_are_memoized() -> None:
    small = MessageRecord(
        id=uuid4(),
        session_id=uuid4(),
        thread_id=uuid4(),
        seq=1,
        role=Role.USER,
        content="hello",
        tool_calls=None,
        tool_results=None,
        is_interrupted=False,
        created_at=datetime.now(UTC),
    )
    assert memoizable(small)
    assert not memoizable(replace(small, content="x" * (MESSAGE_MEMO_MAX_CHARS + 1)))
    assert not memoizable(replace(small, tool_calls=[{"id": "c1", "name": "calculator"}]))
    assert not memoizable(replace(small, tool_results=[{"id": "c1", "result": 42}]))
