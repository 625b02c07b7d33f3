"""Secret handles (`$SECRET:name`): what the model sees in place of a value.

`names_in` finds the handles a tool call's arguments hold; `Resolved` puts the
values in before the tool runs (`fill`) and takes them out of everything the tool
produced (`redact`) before it is stored, published, logged or shown to the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HANDLE_PREFIX = "$SECRET:"
NAME_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
NAME = re.compile(NAME_PATTERN)
_HANDLE = re.compile(re.escape(HANDLE_PREFIX) + f"({NAME_PATTERN})")


def handle(name: str) -> str:
    return HANDLE_PREFIX + name


def _candidates(name: str) -> tuple[str, ...]:
    """A handle at the end of a sentence ("use $SECRET:token.") names `token`
    unless a secret is really called `token.`."""
    trimmed = name.rstrip(".-")
    return (name, trimmed) if trimmed and trimmed != name else (name,)


def names_in(value: Any) -> set[str]:
    """Every secret name a handle in these (JSON) arguments may refer to."""
    found: set[str] = set()
    if isinstance(value, str):
        for match in _HANDLE.finditer(value):
            found.update(_candidates(match.group(1)))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= names_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= names_in(item)
    return found


@dataclass(frozen=True, slots=True)
class Resolved:
    """The values of the secrets one tool call uses (name -> value)."""

    values: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print a value
        return f"Resolved(names={sorted(self.values)})"

    def __bool__(self) -> bool:
        return bool(self.values)

    def fill(self, value: Any) -> Any:
        """The arguments with every handle of a known secret replaced by its value;
        a handle of a secret this client does not have stays as it is."""
        if not self.values:
            return value
        if isinstance(value, str):
            return _HANDLE.sub(self._value_of, value)
        if isinstance(value, Mapping):
            return {key: self.fill(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.fill(item) for item in value]
        return value

    def _value_of(self, match: re.Match[str]) -> str:
        name = match.group(1)
        for candidate in _candidates(name):
            if candidate in self.values:
                return self.values[candidate] + name[len(candidate) :]
        return match.group(0)

    def redact_text(self, text: str) -> str:
        # Longest values first: a value that contains another is replaced whole.
        for name, value in sorted(self.values.items(), key=lambda item: -len(item[1])):
            if value in text:
                text = text.replace(value, handle(name))
        return text

    def redact(self, value: Any) -> Any:
        """Any JSON-like value with every secret value replaced by its handle (in
        strings, keys, and numbers whose digits spell a value)."""
        if not self.values:
            return value
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            return {self.redact(key): self.redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(item) for item in value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
            redacted = self.redact_text(text)
            return value if redacted == text else redacted
        return value
