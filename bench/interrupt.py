"""Interrupt across replicas: the turn streams on the first replica, the stop lands on
the second (as behind a round-robin load balancer).

For each of `sessions` sessions in turn: `POST /api/chat` a `/slow` answer to the
first replica, poll it until part of the answer has streamed, then time
`POST /api/interrupt` on the second replica. The second replica asks the first
through the event bus and answers once the session has stopped, so the time of its
answer is the time the turn took to end (target: at most 1 s). Each stop is then
checked on both replicas (not processing, the partial answer kept): a stop that
did not happen is an error here, not a fast figure.

    python -m bench.interrupt [--sessions 20]     (its own two replicas)
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import httpx

from bench.common import percentiles, servers, write_result

TARGET_MS = 1_000.0
SLOW = "/slow 30 " + " ".join(f"word{n}" for n in range(200))


def _headers(key: str, session_id: str) -> dict[str, str]:
    return {"AOMI-APP-KEY": key, "X-Session-Id": session_id}


async def _until_streaming(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    async with asyncio.timeout(30):
        while True:
            state = (await http.get("/api/state", headers=headers)).json()
            if any(m["is_streaming"] and m["content"] for m in state["messages"]):
                return
            await asyncio.sleep(0.02)


async def _one(on_a: httpx.AsyncClient, on_b: httpx.AsyncClient, key: str) -> float:
    headers = _headers(key, str(uuid.uuid4()))
    (await on_a.post("/api/chat", json={"message": SLOW}, headers=headers)).raise_for_status()
    await _until_streaming(on_a, headers)
    started = time.perf_counter()
    answer = await on_b.post("/api/interrupt", headers=headers)
    elapsed_ms = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    for http in (on_a, on_b):
        state = (await http.get("/api/state", headers=headers)).json()
        if state["is_processing"]:
            raise RuntimeError("the interrupted turn is still processing")
        agent = [m for m in state["messages"] if m["sender"] == "agent"]
        if not agent or not agent[-1]["content"].startswith("You said: word0"):
            raise RuntimeError("the partial answer was not kept")
    return elapsed_ms


async def measure(first_url: str, second_url: str, key: str, sessions: int) -> dict[str, Any]:
    samples: list[float] = []
    async with (
        httpx.AsyncClient(base_url=first_url, timeout=30) as on_a,
        httpx.AsyncClient(base_url=second_url, timeout=30) as on_b,
    ):
        for _ in range(sessions):
            samples.append(await _one(on_a, on_b, key))
    return {"stop": percentiles(samples), "target_ms": TARGET_MS}


def report(result: dict[str, Any], verdict: Any, where: str = "") -> None:
    stop = result["stop"]
    print(
        f"\ninterrupt across replicas{where}: {stop['count']} stops, p50 {stop['p50_ms']} ms, "
        f"p99 {stop['p99_ms']} ms, max {stop['max_ms']} ms (target <= {result['target_ms']:.0f}): "
        + verdict(stop["max_ms"] <= result["target_ms"])
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    with servers({}, 2) as (first, second):
        result = asyncio.run(measure(first.url, second.url, first.key, args.sessions))
    report(result, lambda ok: "ok" if ok else "MISSED")
    print(f"written to {write_result('interrupt', result)}")


if __name__ == "__main__":
    main()
