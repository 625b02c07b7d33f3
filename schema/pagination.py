"""Relay-style connection arguments turned into store windows."""

from __future__ import annotations

from runtime import validation
from runtime.errors import InvalidInput
from runtime.store import MessageWindow
from schema.cursors import parse_message_cursor

DEFAULT_PAGE = 50


def message_window(
    first: int | None, after: str | None, last: int | None, before: str | None
) -> MessageWindow:
    """`first`/`after` pages forward from the oldest; `last`/`before` back from the newest."""
    if first is not None and last is not None:
        raise InvalidInput("first", "give either first or last, not both")
    after_seq = None if after is None else parse_message_cursor("after", after)
    before_seq = None if before is None else parse_message_cursor("before", before)
    if last is not None or (first is None and before is not None):
        size = validation.page_size_arg("last", last if last is not None else DEFAULT_PAGE)
        return MessageWindow(limit=size, after=after_seq, before=before_seq, from_end=True)
    size = validation.page_size_arg("first", first if first is not None else DEFAULT_PAGE)
    return MessageWindow(limit=size, after=after_seq, before=before_seq)
