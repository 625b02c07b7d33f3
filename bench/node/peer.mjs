// A Node GraphQL peer for the benchmark suite: graphql-yoga or Apollo Server
// serving the same session snapshot as Confab, from memory.
//   node peer.mjs yoga|apollo PORT SNAPSHOT.json
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

const [impl, port, snapshotPath] = process.argv.slice(2);
const snapshot = JSON.parse(readFileSync(snapshotPath, "utf8"));

const typeDefs = /* GraphQL */ `
  type Message { id: ID! role: String! content: String! createdAt: String! }
  type MessageConnection { nodes: [Message!]! }
  type Session {
    title: String!
    isProcessing: Boolean!
    messages(last: Int): MessageConnection!
  }
  type Query { session(id: ID!): Session }
`;
const resolvers = {
  Query: { session: () => snapshot },
  Session: {
    messages: (session, { last }) => ({ nodes: session.messages.nodes.slice(-(last ?? 50)) }),
  },
};

if (impl === "yoga") {
  const { createYoga, createSchema } = await import("graphql-yoga");
  const yoga = createYoga({
    schema: createSchema({ typeDefs, resolvers }),
    logging: false,
    graphiql: false,
  });
  createServer(yoga).listen(Number(port), "127.0.0.1");
} else if (impl === "apollo") {
  const { ApolloServer } = await import("@apollo/server");
  const { startStandaloneServer } = await import("@apollo/server/standalone");
  const server = new ApolloServer({ typeDefs, resolvers, csrfPrevention: false });
  await startStandaloneServer(server, { listen: { port: Number(port), host: "127.0.0.1" } });
} else {
  throw new Error(`unknown peer ${impl}`);
}
console.log("ready");
