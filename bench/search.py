"""Full-text search on a 100,000-message corpus: the first page (20 hits) of GraphQL
`search`, one request at a time, for queries from rare to common words, on
PostgreSQL (GIN over `tsvector`) and on the embedded SQLite (FTS5). Target: p99 at
most 50 ms for every query on both.

The corpus (1,000 sessions of 100 messages, each session titled) is written
straight into a database of this benchmark's own, fresh each run (through the API
it would take minutes); the databases' triggers index it as they would any row.
PostgreSQL is measured right after (no VACUUM): the GIN index's pending list of
new entries, which autovacuum later merges, is still scanned by every query, the
slower case.
Text is drawn from a Zipf-distributed vocabulary, so some words are in a tenth of
all messages and others in a handful.

    python -m bench.search [--messages 100000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sqlite3
import tempfile
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import PG_URL, BenchServer, servers, write_result
from bench.loadgen import Request, run

TARGET_P99_MS = 50.0
PER_SESSION = 100
DATABASE = "confab_bench_search"
SEARCH = (
    "query($q: String!) { search(query: $q, first: 20) { "
    "hits { kind rank snippet session { id title } message { id cursor } } "
    "pageInfo { hasNextPage endCursor } } }"
)
# The most frequent words of the corpus, most frequent first: first those a search
# engine drops (stop words), then the ones worth searching for.
_STOP_TEXT = (
    "the a to and of in is it you that for on with this be are can have not will do at "
    "what your how from my we if about but so get just like one time when there more use"
)
_STOP_WORDS = _STOP_TEXT.split()
_COMMON_WORDS = (
    "wallet swap token price chain gas fee bridge stake yield pool liquidity balance "
    "transaction address contract approve send receive network ethereum solana bitcoin "
    "weather rain forecast city travel flight hotel booking order payment refund account "
    "password email login error retry timeout server database query index search result"
)
_WORDS = _STOP_WORDS + _COMMON_WORDS.split()


def vocabulary(size: int = 20_000) -> list[str]:
    """Real words first (the most frequent), then made-up ones, in Zipf order."""
    return _WORDS + [f"term{n}" for n in range(size - len(_WORDS))]


def corpus(messages: int, seed: int = 7) -> tuple[list[list[str]], list[str]]:
    """Each session's message texts, and each session's title."""
    rng = random.Random(seed)
    words = vocabulary()
    weights = [1 / (rank + 1) for rank in range(len(words))]
    sessions = []
    titles = []
    for _ in range(messages // PER_SESSION):
        drawn = rng.choices(words, weights, k=PER_SESSION * 24)
        texts = []
        at = 0
        for _ in range(PER_SESSION):
            length = rng.randint(6, 40)
            texts.append(" ".join(drawn[at : at + length]))
            at += length
        sessions.append(texts)
        titles.append(" ".join(rng.choices(words[:400], k=4)))
    return sessions, titles


def queries(sessions: list[list[str]]) -> dict[str, str]:
    """Words by how many messages hold them: about 10%, 1%, 0.1% and a handful."""
    held: Counter[str] = Counter()
    for texts in sessions:
        for text in texts:
            held.update(set(text.split()))
    total = sum(len(texts) for texts in sessions)

    candidates = {word for word in held if word not in _STOP_WORDS}

    def near(share: float) -> str:
        return min(candidates, key=lambda word: abs(held[word] - share * total))

    common, medium, rare = near(0.10), near(0.01), near(0.001)
    handful = min((w for w in candidates if held[w] >= 3), key=lambda word: held[word])
    # Words that do meet: the rarest word beside `common` in one message, and two
    # neighbours (a phrase), so each query finds something at any corpus size.
    messages = [text.split() for session in sessions for text in session]
    beside = next(words for words in messages if common in words)
    partner = min((w for w in beside if w in candidates and w != common), key=held.__getitem__)
    pair = next(
        (a, b)
        for words in messages
        for a, b in itertools.pairwise(words)
        if a in candidates and b in candidates
    )
    return {
        f"common ({held[common]} messages)": common,
        f"medium ({held[medium]})": medium,
        f"rare ({held[rare]})": rare,
        f"handful ({held[handful]})": handful,
        f"two words ({held[common]} and {held[partner]})": f"{common} {partner}",
        "either of two": f"{medium} or {rare}",
        "phrase": f'"{pair[0]} {pair[1]}"',
    }


async def seed_postgres(url: str, sessions: list[list[str]], titles: list[str]) -> None:
    connection = await asyncpg.connect(url.replace("postgres://", "postgresql://"))
    now = datetime.now(UTC)
    try:
        ids = [uuid.uuid4() for _ in sessions]
        await connection.executemany(
            "INSERT INTO sessions (id, app_id, title, title_source, state, metadata, "
            "is_archived, is_processing, version, events_read_upto, created_at, updated_at, "
            "last_active_at) VALUES ($1, 'bench', $2, 'generated', '{}', '{}', false, false, "
            "1, 0, $3, $3, $3)",
            [(id, title, now) for id, title in zip(ids, titles, strict=True)],
        )
        await connection.executemany(
            "INSERT INTO threads (id, session_id, is_primary, next_seq, created_at, updated_at) "
            "VALUES ($1, $1, true, $2, $3, $3)",
            [(id, PER_SESSION + 1, now) for id in ids],
        )
        await connection.copy_records_to_table(
            "messages",
            columns=[
                "id", "session_id", "thread_id", "seq", "role", "content", "is_interrupted",
                "created_at",
            ],
            records=_message_rows(ids, sessions, now),
        )  # fmt: skip
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def _message_rows(
    ids: list[uuid.UUID], sessions: list[list[str]], now: datetime
) -> list[tuple[Any, ...]]:
    return [
        (uuid.uuid4(), id, id, seq, "user" if seq % 2 else "assistant", text, False, now)
        for id, texts in zip(ids, sessions, strict=True)
        for seq, text in enumerate(texts, start=1)
    ]


def seed_sqlite(path: Path, sessions: list[list[str]], titles: list[str]) -> None:
    """As the ORM writes rows: UUIDs and times as text, booleans as integers."""
    now = datetime.now(UTC).isoformat(sep=" ")
    ids = [uuid.uuid4() for _ in sessions]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO sessions (id, app_id, title, title_source, state, metadata, "
            "is_archived, is_processing, is_pinned, version, events_read_upto, last_event_id, "
            "created_at, updated_at, last_active_at) VALUES (?, 'bench', ?, 'generated', '{}', "
            "'{}', 0, 0, 0, 1, 0, 0, ?, ?, ?)",
            [(str(id), title, now, now, now) for id, title in zip(ids, titles, strict=True)],
        )
        db.executemany(
            "INSERT INTO threads (id, session_id, is_primary, next_seq, created_at, updated_at) "
            "VALUES (?, ?, 1, ?, ?, ?)",
            [(str(id), str(id), PER_SESSION + 1, now, now) for id in ids],
        )
        db.executemany(
            "INSERT INTO messages (id, session_id, thread_id, seq, role, content, "
            "is_interrupted, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
            [
                (str(row[0]), str(row[1]), str(row[2]), row[3], row[4], row[5], now)
                for row in _message_rows(ids, sessions, datetime.now(UTC))
            ],
        )
        db.execute("ANALYZE")


async def fresh_postgres_database() -> str:
    admin = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return PG_URL.rsplit("/", 1)[0] + f"/{DATABASE}"


async def latencies(target: BenchServer, searches: dict[str, str], seconds: float) -> Any:
    found: dict[str, Any] = {}
    for label, text in searches.items():
        body = json.dumps({"query": SEARCH, "variables": {"q": text}}).encode()
        headers = {"Content-Type": "application/json", "AOMI-APP-KEY": target.key}
        request = Request("POST", "/graphql", headers, body)
        await run(target.url, request, 1, 0.5)  # warm-up: plans, caches
        found[label] = {"query": text, **await run(target.url, request, 1, seconds)}
    return found


async def check_answers(target: BenchServer, searches: dict[str, str]) -> None:
    """Every query finds something (a benchmark of empty answers would be no test)."""
    async with httpx.AsyncClient(base_url=target.url, timeout=30) as http:
        for text in searches.values():
            response = await http.post(
                "/graphql",
                json={"query": SEARCH, "variables": {"q": text}},
                headers={"AOMI-APP-KEY": target.key},
            )
            hits = response.json()["data"]["search"]["hits"]
            if not hits:
                raise RuntimeError(f"the search for {text!r} found nothing")


def measure(messages: int, seconds: float) -> dict[str, Any]:
    sessions, titles = corpus(messages)
    searches = queries(sessions)
    result: dict[str, Any] = {"messages": messages, "target_p99_ms": TARGET_P99_MS}
    url = asyncio.run(fresh_postgres_database())
    with servers({"DATABASE_URL": url}, 1) as (postgres,):
        asyncio.run(seed_postgres(url, sessions, titles))
        asyncio.run(check_answers(postgres, searches))
        result["postgres"] = asyncio.run(latencies(postgres, searches, seconds))
    path = Path(tempfile.mkdtemp()) / "search.sqlite3"
    with servers({"DATABASE_URL": f"sqlite://{path}", "CONFAB_EVENT_BUS": "memory://"}, 1) as (
        embedded,
    ):
        seed_sqlite(path, sessions, titles)
        asyncio.run(check_answers(embedded, searches))
        result["sqlite"] = asyncio.run(latencies(embedded, searches, seconds))
    return result


def report(result: dict[str, Any], verdict: Any) -> None:
    target = result["target_p99_ms"]
    print(f"\nsearch, first page of 20, {result['messages']:,} messages, one at a time:")
    for storage in ("postgres", "sqlite"):
        for label, figures in result[storage].items():
            print(
                f"  {storage:<8} {label:<34} p50 {figures['p50_ms']:>6} ms  "
                f"p99 {figures['p99_ms']:>6} ms  " + verdict(figures["p99_ms"] <= target)
            )
    print(f"  (target p99 <= {target} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()
    result = measure(args.messages, args.seconds)
    report(result, lambda ok: "ok" if ok else "MISSED")
    print(f"written to {write_result('search', result)}")


if __name__ == "__main__":
    main()
