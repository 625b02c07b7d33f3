"""The environment as the settings read it, remembering which names they asked
for: what is left over with the settings' prefix is a variable nothing reads (a
typo, most often), which settings.py reports with the closest known name."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping


class RecordedEnvironment(Mapping[str, str]):
    """The environment, remembering which names the settings asked for."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self._read.add(name)
        return self._env[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)

    def unread(self, prefix: str, ignored: tuple[str, ...]) -> tuple[str, ...]:
        """'NAME (did you mean KNOWN?)' for each set `prefix` name nothing read."""
        known = sorted(name for name in self._read if name.startswith(prefix))
        found = []
        for name in sorted(self._env):
            if name.startswith(prefix) and name not in self._read and not name.startswith(ignored):
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
                found.append(f"{name[:60]} (did you mean {close[0]}?)" if close else name[:60])
        return tuple(found)
