"""The frontend guide's resume-by-cursor recipe (docs/frontend.md), run as written
with the npm `graphql-ws` client against a real server, while the connection is
cut and events keep happening: after the reconnect the client has every event
once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.conftest import new_id
from tests.live import post
from tests.node_tools import node_command
from tests.processes import ServerProcess

# docs/frontend.md's `watchSession`, in CommonJS, printing what it sees.
RECIPE = r"""
const { createClient } = require("graphql-ws");
const WebSocket = require("ws");
const [url, sessionId] = process.argv.slice(2);
const say = (what) => console.log(JSON.stringify(what));

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  retryAttempts: Infinity,
  shouldRetry: () => true,
  retryWait: () => new Promise((resolve) => setTimeout(resolve, 100)),
  on: { connected: () => say({ connected: true }), closed: () => say({ closed: true }) },
});

const payload = {
  query: `subscription ($s: ID!, $after: String) {
    sessionEvents(sessionId: $s, after: $after) { cursor type data }
  }`,
  variables: { s: sessionId, after: null },
};
client.subscribe(payload, {
  next: ({ data }) => {
    const event = data.sessionEvents;
    payload.variables.after = event.cursor; // a reconnect resumes from here
    say({ event });
  },
  error: (error) => { say({ error: String(error) }); process.exit(1); },
  complete: () => {},
});
"""
RENAME = "mutation($id: ID!, $t: String!) { renameSession(id: $id, title: $t) { id } }"


class CuttableProxy:
    """A TCP proxy in front of the server whose connections the test can cut, and
    which refuses new ones while it is cut (the client keeps retrying)."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._links: set[asyncio.Task[None]] = set()
        self.cut = False
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self._target_port
        )
        pumps = [
            asyncio.create_task(_pump(reader, upstream_writer)),
            asyncio.create_task(_pump(upstream_reader, writer)),
        ]
        self._links.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
                self._links.discard(pump)
            writer.close()
            upstream_writer.close()

    def cut_all(self) -> None:
        self.cut = True
        for link in list(self._links):
            link.cancel()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CuttableProxy]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self
            self.cut_all()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


class Watcher:
    """The Node process running the recipe; its lines, parsed, as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []

    async def until(self, wanted: str, count: int = 1, timeout: float = 30) -> None:
        async def read() -> None:
            assert self.process.stdout is not None
            while sum(1 for line in self.seen if wanted in line) < count:
                line = await self.process.stdout.readline()
                assert line, f"node exited: {self.seen}"
                self.seen.append(json.loads(line))

        await asyncio.wait_for(read(), timeout)

    def titles(self) -> list[str]:
        return [
            line["event"]["data"]["new_title"]
            for line in self.seen
            if "event" in line and line["event"]["type"] == "title_changed"
        ]


async def test_the_guides_recipe_resumes_with_no_gap_and_no_duplicate(
    server: ServerProcess,
) -> None:
    session_id = new_id()
    await post(server, "mutation($id: ID!) { createSession(id: $id) { id } }", id=session_id)
    async with CuttableProxy(server.port).running() as proxy:
        command, env = node_command(RECIPE, f"ws://127.0.0.1:{proxy.port}/graphql", session_id)
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE
        )
        watcher = Watcher(process)
        try:
            await watcher.until("connected")
            await post(server, RENAME, id=session_id, t="one")
            await watcher.until("event")

            proxy.cut_all()  # the network drops; events go on meanwhile
            await watcher.until("closed")
            for title in ("two", "three"):
                await post(server, RENAME, id=session_id, t=title)
            proxy.cut = False  # back: the client reconnects with the last cursor

            await watcher.until("connected", count=2)
            await post(server, RENAME, id=session_id, t="four")
            await watcher.until("event", count=4)
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    assert watcher.titles() == ["one", "two", "three", "four"], watcher.seen
