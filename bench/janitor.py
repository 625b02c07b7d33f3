"""Request latency while the janitor deletes a large number of expired sessions.

Workload: a server process (PostgreSQL + Redis, janitor every second, batches of
500). Four clients read a session's state (`GET /api/state`, which queries the
database) back to back. First without anything to sweep (the baseline), then
after N expired sessions (each with its primary thread) are inserted directly in
the database, until the janitor has deleted them all. Both phases run in the same
process against the same server; the ratio is what holds on a noisy machine.

    python -m bench.janitor [--sessions 1000000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx

from bench.common import PG_URL, percentiles, server, write_result

CLIENTS = 4

_INSERT_EXPIRED = """
WITH created AS (
    INSERT INTO sessions (id, app_id, title_source, state, metadata, is_archived,
                          is_processing, version, events_read_upto, created_at, updated_at,
                          last_active_at, expires_at)
    SELECT gen_random_uuid(), 'bench', 'default', '{}', '{}', false, false, 1, 0,
           now(), now(), now(), now() - interval '1 hour'
    FROM generate_series(1, $1)
    RETURNING id
)
INSERT INTO threads (id, session_id, is_primary, next_seq, created_at, updated_at)
SELECT id, id, true, 1, now(), now() FROM created
"""


async def read_state(url: str, key: str, session_id: str, until: Any) -> list[float]:
    headers = {"X-Session-Id": session_id, "X-API-Key": key}
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        while not await until():
            started = time.perf_counter()
            response = await http.get("/api/state")
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return samples


async def expired_left(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM sessions WHERE expires_at <= now()"))


async def measure(url: str, key: str, sessions: int, baseline_seconds: float) -> dict[str, Any]:
    connection = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://"))
    try:
        session_id = str(uuid.uuid4())
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await http.post(
                "/api/chat",
                headers={"X-Session-Id": session_id, "X-API-Key": key},
                params={"message": "hello"},
            )
        await asyncio.sleep(1)

        deadline = time.monotonic() + baseline_seconds

        async def baseline_over() -> bool:
            return time.monotonic() > deadline

        baseline = [
            s
            for chunk in await asyncio.gather(
                *(read_state(url, key, session_id, baseline_over) for _ in range(CLIENTS))
            )
            for s in chunk
        ]

        inserted_at = time.perf_counter()
        await connection.execute(_INSERT_EXPIRED, sessions)
        insert_seconds = time.perf_counter() - inserted_at
        sweep_started = time.perf_counter()
        done = asyncio.Event()

        async def watch_sweep() -> None:
            while await expired_left(connection):  # noqa: ASYNC110 - polls the database
                await asyncio.sleep(0.5)
            done.set()

        async def swept() -> bool:
            return done.is_set()

        watcher = asyncio.create_task(watch_sweep())
        during = [
            s
            for chunk in await asyncio.gather(
                *(read_state(url, key, session_id, swept) for _ in range(CLIENTS))
            )
            for s in chunk
        ]
        sweep_seconds = time.perf_counter() - sweep_started
        await watcher
    finally:
        await connection.close()
    base, sweep = percentiles(baseline), percentiles(during)
    return {
        "expired_sessions": sessions,
        "insert_seconds": round(insert_seconds, 1),
        "sweep_seconds": round(sweep_seconds, 1),
        "deleted_per_second": round(sessions / sweep_seconds),
        "baseline": base,
        "during_sweep": sweep,
        "p50_ratio": round(sweep["p50_ms"] / base["p50_ms"], 2),
        "p99_ratio": round(sweep["p99_ms"] / base["p99_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10, help="baseline duration")
    args = parser.parse_args()
    with server({"CONFAB_JANITOR_INTERVAL": "1", "CONFAB_JANITOR_BATCH": "500"}) as started:
        result = asyncio.run(measure(started.url, started.key, args.sessions, args.seconds))
    base, sweep = result["baseline"], result["during_sweep"]
    print(
        f"janitor: {args.sessions} expired sessions (with threads), batches of 500, "
        f"{CLIENTS} clients reading GET /api/state"
    )
    print(
        f"  swept in {result['sweep_seconds']} s ({result['deleted_per_second']}/s); "
        f"inserted in {result['insert_seconds']} s"
    )
    print(f"  baseline     p50 {base['p50_ms']} ms  p99 {base['p99_ms']} ms")
    print(f"  during sweep p50 {sweep['p50_ms']} ms  p99 {sweep['p99_ms']} ms")
    print(f"  ratio        p50 x{result['p50_ratio']}  p99 x{result['p99_ratio']}")
    path = write_result("janitor", {"scenario": "janitor sweep", "params": vars(args), **result})
    print(f"  written to {path}")


if __name__ == "__main__":
    main()
