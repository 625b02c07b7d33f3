"""Where a server's time goes: py-spy samples the Confab server process while the
load generator runs one read side (`graphql`, `rest`), or while 1,000 subscribers
on it receive events published by a second replica 50 ms apart (`fanout`); the
hottest functions are printed by their own time and including callees.

    python -m bench.profile graphql|rest|fanout [--seconds 8] [--connections 8] [--sqlite]

Needs `py-spy` (pip install py-spy; sampling another process may need root).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx

from bench import fanout
from bench.common import BenchServer, percentiles, server, servers
from bench.loadgen import run
from bench.reads import SNAPSHOT, chatty_session, get, graphql
from bench.wsclient import Received, open_many


def _sampled(path: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [
            frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1] for frame in stack.split(";")
        ]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    for title, counter in (("own time", own), ("including callees", inclusive)):
        print(f"\n{title} (of {total} samples):")
        for frame, samples in counter.most_common(top):
            print(f"  {samples * 100 / total:5.1f}%  {frame}")


async def _load(url: str, side: str, seconds: float, connections: int) -> None:
    chatty = await chatty_session(url)
    request = (
        graphql(SNAPSHOT, id=chatty)
        if side == "graphql"
        else get("/api/state", **{"X-Session-Id": chatty})
    )
    await run(url, request, connections, 1.0)
    await run(url, request, connections, seconds)


async def _fanout(
    spy: str, output: Path, target: BenchServer, publisher: BenchServer, seconds: float
) -> None:
    received: Received = []
    session_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=target.url, headers={"AOMI-APP-KEY": target.key}) as http:
        (await http.post("/api/sessions", headers={"X-Session-Id": session_id})).raise_for_status()
    connections = await open_many(
        1000, lambda _: fanout.graphql_subscriber(target.url, target.key, session_id, received)
    )
    await fanout.wait_for_subscribers(target.url, 1000)
    paced = f"{publisher.url}/bench/publish?session={session_id}&count=20&interval_ms=50"
    await fanout.deliver(paced, received, 20_000)  # warm up
    recorder = await asyncio.create_subprocess_exec(
        *(spy, "record", "--format", "raw", "-o", str(output), "-p", str(target.pid)),
        *("-d", str(int(seconds)), "-r", "250", "--nonblocking"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    events = int(seconds * 20)
    paced = f"{publisher.url}/bench/publish?session={session_id}&count={events}&interval_ms=50"
    _, latencies = await fanout.deliver(paced, received, 1000 * events)
    print("paced delivery while sampled:", percentiles(latencies))
    await asyncio.wait_for(recorder.wait(), 60)
    for connection in connections:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("side", choices=("graphql", "rest", "fanout"))
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not on PATH: pip install py-spy")
    env = {"CONFAB_BENCH_BASELINES": "true"}
    if args.sqlite:
        env |= {
            "DATABASE_URL": f"sqlite://{tempfile.mkdtemp()}/p.sqlite3",
            "CONFAB_EVENT_BUS": "memory://",
        }
    output = Path(tempfile.mkdtemp()) / "profile.txt"
    if args.side == "fanout":
        with servers(env, 2) as (target, publisher):
            asyncio.run(_fanout(spy, output, target, publisher, args.seconds))
        _sampled(output, args.top)
        return
    with server(env) as target:
        recorder = subprocess.Popen(
            [
                spy,
                "record",
                "--format",
                "raw",
                "-o",
                str(output),
                "-p",
                str(target.pid),
                "-d",
                str(int(args.seconds + 3)),
                "-r",
                "250",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        asyncio.run(_load(target.url, args.side, args.seconds, args.connections))
        recorder.wait(60)
    _sampled(output, args.top)


if __name__ == "__main__":
    main()
