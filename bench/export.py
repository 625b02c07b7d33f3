"""Export in constant memory: `GET /api/sessions/{id}/export` of a 10,000- and a
100,000-message session (PostgreSQL), streamed to a client that reads and drops
it, while the server's resident memory is sampled every 20 ms. The peak growth of
the longer export must stay within `TARGET_GROWTH_KIB` (the document itself is
about 15 MB): what streams is a page of rows, not the session.

    python -m bench.export [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import httpx

from bench.common import BenchServer, server, write_result
from bench.reads import seed_history

TARGET_GROWTH_KIB = 32 * 1024


async def seeded(url: str, messages: int) -> str:
    session_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await http.post("/api/sessions", headers={"X-Session-Id": session_id})
    await seed_history(session_id, messages)
    return session_id


async def export_once(confab: BenchServer, session_id: str) -> dict[str, Any]:
    baseline = confab.rss_kib()
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, confab.rss_kib())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    size = 0
    async with (
        httpx.AsyncClient(base_url=confab.url, timeout=300) as http,
        http.stream("GET", f"/api/sessions/{session_id}/export") as response,
    ):
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
    done.set()
    await sampler
    return {
        "bytes": size,
        "seconds": round(time.perf_counter() - started, 2),
        "rss_before_kib": baseline,
        "peak_growth_kib": peak - baseline,
    }


async def measure(confab: BenchServer, sizes: list[int]) -> dict[str, Any]:
    """Each size exported once, smallest first, after a warm-up on a tiny session (so
    code paths are loaded): memory a whole document held would show as growth."""
    await export_once(confab, await seeded(confab.url, 100))
    runs = {}
    for messages in sorted(sizes):
        session_id = await seeded(confab.url, messages)
        runs[str(messages)] = {"messages": messages, **await export_once(confab, session_id)}
    return {"runs": runs, "target_peak_growth_kib": TARGET_GROWTH_KIB}


def report(result: dict[str, Any], verdict: Any) -> None:
    print("\nexport (REST, streamed), PostgreSQL:")
    for run in result["runs"].values():
        print(
            f"  {run['messages']:>7} messages: {run['bytes'] / 1e6:.1f} MB in {run['seconds']} s, "
            f"server RSS peak +{run['peak_growth_kib']} KiB"
        )
    longest = max(result["runs"].values(), key=lambda r: r["messages"])
    target = result["target_peak_growth_kib"]
    print(
        f"  peak growth at {longest['messages']} messages {longest['peak_growth_kib']} KiB "
        f"(target <= {target} KiB): " + verdict(longest["peak_growth_kib"] <= target)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with server({"CONFAB_LOG_LEVEL": "warning"}) as confab:
        result = asyncio.run(measure(confab, sizes))
    report(result, lambda ok: "ok" if ok else "MISSED")
    print(f"written to {write_result('export', result)}")


if __name__ == "__main__":
    main()
