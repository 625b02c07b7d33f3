"""What a user typed into a search box, parsed once into terms each database's own
query language is written from: PostgreSQL's `websearch_to_tsquery` syntax, which
people know from web search engines, and the same meaning in SQLite FTS5.

    weather paris        both words (in any order)
    "heavy rain"         the words next to each other
    rain or snow         either
    -forecast            not this word (only beside a word that is searched for)

Words are runs of letters and digits (`\\w`); anything else separates them, so no
input is a syntax error in either database: every word reaches it double-quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import InvalidInput

QUERY_MAX_CHARS = 256
TERMS_MAX = 16
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Phrase:
    words: tuple[str, ...]

    def quoted(self) -> str:
        return '"' + " ".join(self.words) + '"'


@dataclass(frozen=True, slots=True)
class SearchTerms:
    # Every group must match; a group matches when any of its phrases does.
    groups: tuple[tuple[Phrase, ...], ...]
    excluded: tuple[Phrase, ...] = ()

    def websearch(self) -> str:
        """For PostgreSQL's `websearch_to_tsquery`."""
        wanted = [" or ".join(p.quoted() for p in group) for group in self.groups]
        return " ".join(wanted + [f"-{p.quoted()}" for p in self.excluded])

    def fts5(self) -> str:
        """An FTS5 query expression."""
        wanted = " AND ".join(
            f"({' OR '.join(p.quoted() for p in group)})" for group in self.groups
        )
        return "".join([f"({wanted})", *(f" NOT {p.quoted()}" for p in self.excluded)])


def parse_terms(field: str, text: str) -> SearchTerms:
    """INVALID_INPUT for an empty or overlong query, or one with nothing to look for."""
    if len(text) > QUERY_MAX_CHARS:
        raise InvalidInput(field, f"must be at most {QUERY_MAX_CHARS} characters")
    groups: list[list[Phrase]] = []
    excluded: list[Phrase] = []
    join_next = False
    count = 0
    for match in _TOKEN.finditer(text):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or":
            join_next = bool(groups)
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negated, bare = "-", bare[1:]
        words = tuple(_WORD.findall(quoted if quoted is not None else bare))
        if not words:
            continue
        count += 1
        if count > TERMS_MAX:
            raise InvalidInput(field, f"must have at most {TERMS_MAX} words or phrases")
        phrase = Phrase(words)
        if negated:
            excluded.append(phrase)
        elif join_next:
            groups[-1].append(phrase)
        else:
            groups.append([phrase])
        join_next = False
    if not groups:
        raise InvalidInput(
            field,
            "has no words to search for"
            if not excluded
            else "must name a word to find, not only words to leave out",
        )
    return SearchTerms(tuple(tuple(group) for group in groups), tuple(excluded))
