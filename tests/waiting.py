"""Waiting for a condition in tests: poll it, never sleep a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def until(condition: Callable[..., Any], what: str, timeout: float = 30) -> None:
    """Returns once `condition()` is truthy (awaited, if it returns an awaitable);
    raises after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await _holds(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def _holds(condition: Callable[..., Any]) -> bool:
    answer = condition()
    if inspect.isawaitable(answer):
        answer = await answer
    return bool(answer)


async def first_read(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str, timeout: float = 30
) -> T:
    """Reads (a query, say) until `done` holds for what it returned; that result."""
    deadline = time.monotonic() + timeout
    while True:
        result = await read()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)
