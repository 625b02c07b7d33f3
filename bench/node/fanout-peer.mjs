// The fan-out peer for the benchmark suite: graphql-ws on Node (the `ws` server)
// with the same `toolUpdate` subscription as Confab, and an HTTP trigger that
// publishes to every subscriber, like bench/baselines_fanout.py.
//   node fanout-peer.mjs PORT
//   POST /broadcast?count=100&interval_ms=50
import { createServer } from "node:http";
import { WebSocketServer } from "ws";
import { useServer } from "graphql-ws/use/ws";
import { GraphQLScalarType } from "graphql";
import { makeExecutableSchema } from "@graphql-tools/schema";

const port = Number(process.argv[2]);
const listeners = new Set();

function subscription() {
  // One queue per subscriber, fed by the broadcast below.
  const queue = [];
  let wake = null;
  const listener = (event) => {
    queue.push(event);
    if (wake) { wake(); wake = null; }
  };
  listeners.add(listener);
  return {
    [Symbol.asyncIterator]() { return this; },
    async next() {
      while (queue.length === 0) await new Promise((resolve) => { wake = resolve; });
      return { value: { toolUpdate: queue.shift() }, done: false };
    },
    async return() { listeners.delete(listener); return { value: undefined, done: true }; },
  };
}

const schema = makeExecutableSchema({
  typeDefs: /* GraphQL */ `
    scalar JSON
    type ToolEvent { cursor: String! toolName: String! result: JSON ts: String! }
    type Query { ok: Boolean }
    type Subscription { toolUpdate(sessionId: ID!): ToolEvent! }
  `,
  resolvers: {
    JSON: new GraphQLScalarType({ name: "JSON", serialize: (value) => value }),
    Subscription: { toolUpdate: { subscribe: () => subscription() } },
  },
});

async function broadcast(count, intervalMs) {
  const started = performance.now();
  for (let step = 1; step <= count; step++) {
    const due = started + (step - 1) * intervalMs;
    const wait = due - performance.now();
    if (intervalMs && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const event = {
      cursor: String(step),
      toolName: "bench_tool",
      result: { status: "running", progress: { step, of: count } },
      ts: new Date().toISOString(),
    };
    for (const listener of listeners) listener(event);
    if (!intervalMs) await new Promise((resolve) => setImmediate(resolve));
  }
  return (performance.now() - started) / 1000;
}

const http = createServer(async (request, response) => {
  const url = new URL(request.url, "http://peer");
  if (request.method === "POST" && url.pathname === "/broadcast") {
    const seconds = await broadcast(
      Number(url.searchParams.get("count") ?? 100),
      Number(url.searchParams.get("interval_ms") ?? 0),
    );
    const body = JSON.stringify({ subscribers: listeners.size, seconds });
    response.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    response.end(body);
  } else if (url.pathname === "/readyz") {
    const body = JSON.stringify({ events: { subscribers: listeners.size } });
    response.writeHead(200, { "content-type": "application/json", "content-length": body.length });
    response.end(body);
  } else {
    response.writeHead(404);
    response.end();
  }
});
useServer({ schema }, new WebSocketServer({ server: http, path: "/graphql" }));
http.listen(port, "127.0.0.1", () => console.log("ready"));
