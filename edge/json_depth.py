"""How deeply a JSON text nests, found without parsing it.

`json.loads` recurses once per array or object, so a few kilobytes of `[[[[...`
raise `RecursionError` deep inside a handler (a 500). The edge refuses such texts
before any parser sees them. The check is cheap where it matters: a text with no
more brackets than the limit cannot nest deeper than it, which is one pass of
`bytes.count` for nearly every request; only the rest are scanned, still at C
speed (translate, split, join, one running sum): about 40 ms for a mebibyte
of nothing but brackets, less than parsing it would take.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate

# An escape and the character it escapes: once they are gone, every quote left
# opens or closes a string.
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')
# Each bracket becomes a step of the running depth: +1 opens, -1 (0xff read as a
# signed byte) closes. Only the depth matters, not which kind of bracket.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def nests_deeper_than(text: bytes, limit: int) -> bool:
    """True if arrays and objects in `text` nest more than `limit` levels.

    Exact for valid JSON. For invalid JSON it never reports less than the depth a
    parser would reach before failing (unclosed brackets count), so a text this
    says is shallow enough cannot make the parser recurse deeper than `limit`.
    """
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    brackets = _outside_strings(_as_utf8(text))
    if brackets.count(b"[") + brackets.count(b"{") <= limit:
        return False
    # The deepest point of the running depth. Where a stray close takes it below
    # zero a parser has already failed, so what follows cannot lower the answer
    # below the depth it reached.
    steps = memoryview(brackets.translate(_STEPS)).cast("b")
    return max(accumulate(steps, initial=0)) > limit


def _outside_strings(text: bytes) -> bytes:
    """The brackets of `text` that are not inside a string, in order."""
    if b"\\" in text:
        text = _ESCAPE.sub(b"", text)
    # Quotes and brackets only; then every other piece between quotes is outside.
    return b"".join(text.translate(None, _NOT_STRUCTURE).split(b'"')[::2])


def _as_utf8(text: bytes) -> bytes:
    """`json.loads` also reads UTF-16 and UTF-32; scan those as UTF-8, where a
    quote or a bracket is one byte and never part of another character."""
    if text[:4].count(0) == 0 and not text.startswith((b"\xff\xfe", b"\xfe\xff")):
        return text
    try:
        return text.decode(json.detect_encoding(text)).encode("utf-8")
    except (UnicodeDecodeError, LookupError):
        # Not decodable: the parser refuses it before nesting anything.
        return text
