import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { execute, parse, validate, type GraphQLSchema } from 'graphql';
import { resolvers } from './resolvers.js';
import { SUBGRAPH_NAMES, subgraphSdl, type SubgraphName } from './schemas.js';

/**
 * The benchmark's four subgraphs in one HTTP server, at `/<name>`. Each is a real
 * federation subgraph (@apollo/subgraph: `_service`, `_entities`), executed with graphql-js. Answers
 * are memoised by request body: the gateway under test sends the same few bodies over and over, so
 * after the first request a subgraph answer costs a map lookup and the figure measures the gateway.
 */
const schemas = new Map<string, GraphQLSchema>(
  SUBGRAPH_NAMES.map((name: SubgraphName) => [
    `/${name}`,
    buildSubgraphSchema({ typeDefs: parse(subgraphSdl(name)), resolvers: resolvers[name] }),
  ]),
);

// Bounded so a gateway that varies its bodies cannot grow the memo without end (it would only run slower).
const MEMO_LIMIT = 10_000;

interface ServerState {
  memo: Map<string, Buffer>;
  /** What the subgraphs served, for the bench to report fetches and bytes per gateway request. */
  served: { requests: number; bytes: number };
}

interface GraphQLRequestBody {
  query?: unknown;
  variables?: Record<string, unknown> | null;
  operationName?: string | null;
}

async function answer(schema: GraphQLSchema, body: string): Promise<Buffer> {
  let request: GraphQLRequestBody;
  try {
    request = JSON.parse(body) as GraphQLRequestBody;
  } catch {
    return Buffer.from(JSON.stringify({ errors: [{ message: 'body is not JSON' }] }));
  }
  if (typeof request.query !== 'string') return Buffer.from(JSON.stringify({ errors: [{ message: 'no query' }] }));
  const document = parse(request.query);
  const errors = validate(schema, document);
  const result = errors.length > 0
    ? { errors }
    : await execute({ schema, document, variableValues: request.variables ?? undefined, operationName: request.operationName ?? undefined });
  return Buffer.from(JSON.stringify(result));
}

function send(response: ServerResponse, status: number, payload: Buffer): void {
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': payload.length }).end(payload);
}

async function handle({ memo, served }: ServerState, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = request.url ?? '/';
  if (request.method === 'GET' && path === '/health') return send(response, 200, Buffer.from('{"status":"ok"}'));
  if (request.method === 'GET' && path === '/stats') return send(response, 200, Buffer.from(JSON.stringify(served)));
  const schema = schemas.get(path);
  if (!schema || request.method !== 'POST') return send(response, 404, Buffer.from('{"error":"not found"}'));
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  const key = `${path}\n${body}`;
  let payload = memo.get(key);
  if (!payload) {
    payload = await answer(schema, body);
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(key, payload);
  }
  served.requests++;
  served.bytes += payload.length;
  send(response, 200, payload);
}

/** A server answering `/accounts`, `/inventory`, `/products`, `/reviews`, `/health` and `/stats`; not listening yet. */
export function createSubgraphsServer(): Server {
  const state: ServerState = { memo: new Map(), served: { requests: 0, bytes: 0 } };
  const server = createServer((request, response) => {
    handle(state, request, response).catch((error: unknown) => {
      console.error(error);
      if (!response.headersSent) send(response, 500, Buffer.from('{"errors":[{"message":"subgraph failed"}]}'));
    });
  });
  // Longer than any gateway's idle pooling, so connections are not closed under its feet.
  server.keepAliveTimeout = 65_000;
  return server;
}
