import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { GatewayContext } from '../../src/context.js';
import { GatewayDataSource } from '../../src/graphql/data-source.js';
import { SubgraphHttpClient } from '../../src/graphql/subgraph-http.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';
import { reviewsSubgraph } from '../helpers/reviews-subgraph.js';

/**
 * How the gateway's subgraph transport behaves on the wire: the per-subgraph timeout bounds the
 * whole exchange, compressed answers are read, Cache-Control narrows the response's cache policy,
 * connections are reused, and an error status or a redirect is reported, never followed.
 */
type Encoding = 'gzip' | 'deflate' | 'raw-deflate' | 'br';
type Oversized = 'oversized' | 'oversized-chunked' | 'gzip-bomb';
type Mode = 'ok' | 'stall-after-headers' | 'trickle' | Encoding | 'cacheable' | 'graphql-400' | 'redirect' | Oversized;
const ENCODERS: Record<Encoding, [string, (data: string) => Buffer]> = {
  gzip: ['gzip', gzipSync],
  deflate: ['deflate', deflateSync],
  // Some servers send raw deflate under the same name; browsers and fetch accept both.
  'raw-deflate': ['deflate', deflateRawSync],
  br: ['br', brotliCompressSync],
};
let mode: Mode = 'ok';
let stack: Stack;
let elsewhere: Server;
let elsewhereHits: IncomingHttpHeaders[] = [];
const reviewSockets = new Set<unknown>();
const TIMEOUT_MS = 400;
// The reviews subgraph's own limit; its real answers are a few hundred bytes.
const MAX_RESPONSE_BYTES = 1_000_000;
// Trailing whitespace keeps an answer valid JSON: only its size can make the gateway refuse it.
const PADDING = ' '.repeat(2 * MAX_RESPONSE_BYTES);
// A second gzip member that inflates to 64 MB from ~64 KB (gunzip reads concatenated members).
let bombTail: Buffer;
const QUERY = '{ products { name reviewCount } }';
const FULL = {
  products: [
    { name: 'Anvil', reviewCount: 10 },
    { name: 'Rocket Skates', reviewCount: 11 },
    { name: 'Giant Magnet', reviewCount: 11 },
  ],
};

/** Hooks every subgraph gets: compress or mark cacheable what it answers, when the test asks. */
function shapeAnswers(app: FastifyInstance) {
  app.addHook('onSend', async (_request, reply, payload) => {
    if (mode === 'cacheable') reply.header('cache-control', 'max-age=30, public');
    if (!(mode in ENCODERS) || typeof payload !== 'string') return payload;
    const [name, encode] = ENCODERS[mode as Encoding];
    reply.header('content-encoding', name);
    return encode(payload);
  });
}

/** Misbehaviours of the reviews subgraph, before it runs any GraphQL. */
function misbehave(app: FastifyInstance) {
  shapeAnswers(app);
  app.addHook('onSend', async (_request, reply, payload) => {
    if (typeof payload !== 'string') return payload;
    if (mode === 'oversized') return payload + PADDING;
    // A stream: sent chunked, with no content-length to refuse the answer by.
    if (mode === 'oversized-chunked') return Readable.from([payload, PADDING]);
    if (mode === 'gzip-bomb') {
      reply.header('content-encoding', 'gzip');
      return Buffer.concat([gzipSync(payload), bombTail]);
    }
    return payload;
  });
  app.addHook('onRequest', async (request, reply) => {
    reviewSockets.add(request.raw.socket);
    if (mode === 'stall-after-headers') {
      // Headers and the start of a body at once, then nothing: only a whole-exchange bound ends it.
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'application/json' });
      reply.raw.write('{"data":');
    }
    if (mode === 'trickle') {
      // A byte every 100 ms (JSON may start with whitespace): no single gap reaches the timeout.
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'application/json' });
      const timer = setInterval(() => reply.raw.write(' '), 100);
      reply.raw.on('close', () => clearInterval(timer));
    }
    if (mode === 'graphql-400') {
      return reply.code(400).type('application/graphql-response+json').send({ errors: [{ message: 'internal validation detail' }] });
    }
    if (mode === 'redirect') {
      const { port } = elsewhere.address() as AddressInfo;
      return reply.redirect(`http://127.0.0.1:${port}/graphql`, 307);
    }
  });
}

beforeAll(async () => {
  bombTail = gzipSync(Buffer.alloc(64 * MAX_RESPONSE_BYTES, ' '));
  elsewhere = createServer((request, response) => {
    if (request.url === '/stall') return; // never answers
    elsewhereHits.push(request.headers);
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{"_entities":[]}}');
  });
  elsewhere.listen(0, '127.0.0.1');
  await once(elsewhere, 'listening');
  stack = await startStack({
    definitions: [catalogSubgraph(), reviewsSubgraph()],
    env: {
      SUBGRAPH_REVIEWS_TIMEOUT_MS: String(TIMEOUT_MS),
      SUBGRAPH_REVIEWS_MAX_RESPONSE_BYTES: String(MAX_RESPONSE_BYTES),
      DEFAULT_TENANT_ID: 'acme',
    },
    configure: { reviews: { configure: misbehave }, catalog: { configure: shapeAnswers } },
  });
});
afterAll(async () => {
  await stack.close();
  elsewhere.closeAllConnections();
  elsewhere.close();
});
beforeEach(() => {
  mode = 'ok';
  elsewhereHits = [];
});

function expectReviewsFailed(body: Awaited<ReturnType<typeof postGraphQL>>['body'], code: string) {
  expect(body.data).toEqual({ products: FULL.products.map(({ name }) => ({ name, reviewCount: null })) });
  expect(body.errors).toHaveLength(1);
  expect(body.errors![0]!.extensions).toMatchObject({ code, serviceName: 'reviews' });
}

describe('subgraph transport', () => {
  it('times out a body that stalls after the headers, at the per-subgraph timeout', async () => {
    mode = 'stall-after-headers';
    const started = Date.now();
    const { status, body } = await postGraphQL(stack.url, { query: QUERY });
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_500);
    expect(status).toBe(200);
    expectReviewsFailed(body, 'SUBGRAPH_TIMEOUT');
  });

  it('times out a body that trickles in: the timeout bounds the whole exchange, not each gap', async () => {
    mode = 'trickle';
    const started = Date.now();
    const { body } = await postGraphQL(stack.url, { query: QUERY });
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_500);
    expectReviewsFailed(body, 'SUBGRAPH_TIMEOUT');
  });

  it('serves again after a timeout, with full data', async () => {
    mode = 'stall-after-headers';
    await postGraphQL(stack.url, { query: QUERY });
    mode = 'ok';
    expect((await postGraphQL(stack.url, { query: QUERY })).body).toEqual({ data: FULL });
  });

  it.each(Object.keys(ENCODERS) as Encoding[])('reads %s-compressed answers', async (encoding) => {
    mode = encoding;
    expect((await postGraphQL(stack.url, { query: QUERY })).body).toEqual({ data: FULL });
  });

  it.each<[Oversized, string]>([
    ['oversized', 'a plain answer whose content-length exceeds the limit'],
    ['oversized-chunked', 'a chunked answer that grows past the limit'],
    ['gzip-bomb', 'a small gzip answer that inflates past the limit'],
  ])('refuses %s (%s) as SUBGRAPH_BAD_RESPONSE, quickly, and keeps serving', async (oversized) => {
    mode = oversized;
    const started = Date.now();
    const { status, body } = await postGraphQL(stack.url, { query: QUERY });
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(status).toBe(200);
    expectReviewsFailed(body, 'SUBGRAPH_BAD_RESPONSE');
    mode = 'ok';
    expect((await postGraphQL(stack.url, { query: QUERY })).body).toEqual({ data: FULL });
  });

  it("narrows the response's cache policy by the subgraphs' Cache-Control, as Apollo does", async () => {
    const uncacheable = await postGraphQL(stack.url, { query: QUERY });
    expect(uncacheable.headers.get('cache-control')).not.toMatch(/max-age=[1-9]/);
    mode = 'cacheable';
    const cacheable = await postGraphQL(stack.url, { query: QUERY });
    expect(cacheable.body).toEqual({ data: FULL });
    expect(cacheable.headers.get('cache-control')).toBe('max-age=30, public');
  });

  it('reports a 4xx answer with a GraphQL body as an HTTP error, without its message', async () => {
    mode = 'graphql-400';
    const { body } = await postGraphQL(stack.url, { query: QUERY });
    expectReviewsFailed(body, 'SUBGRAPH_HTTP_ERROR');
    expect(body.errors![0]!.extensions).toMatchObject({ httpStatus: 400 });
    expect(JSON.stringify(body)).not.toContain('internal validation detail');
  });

  it('does not follow a redirect: the identity headers never reach another origin', async () => {
    mode = 'redirect';
    const { body } = await postGraphQL(stack.url, { query: QUERY });
    expectReviewsFailed(body, 'SUBGRAPH_HTTP_ERROR');
    expect(body.errors![0]!.extensions).toMatchObject({ httpStatus: 307 });
    expect(elsewhereHits).toEqual([]);
  });

  it('reuses kept-alive connections for sequential calls', async () => {
    reviewSockets.clear();
    for (let i = 0; i < 5; i++) expect((await postGraphQL(stack.url, { query: QUERY })).body).toEqual({ data: FULL });
    expect(reviewSockets.size).toBe(1);
  });
});

describe('subgraph calls outside an operation', () => {
  const healthCheck = (url: string) =>
    ({
      kind: 'health check',
      request: { query: 'query __ApolloServiceHealthCheck__ { __typename }', http: { url, method: 'POST', headers: new Headers() } },
      context: {},
    }) as unknown as GraphQLDataSourceProcessOptions<GatewayContext>;
  const dataSource = (client: SubgraphHttpClient, path: string, timeoutMs = 10_000) => {
    const { port } = elsewhere.address() as AddressInfo;
    const endpoint = client.endpoint('elsewhere', `http://127.0.0.1:${port}${path}`, { timeoutMs, maxResponseBytes: 1_000_000 });
    return new GatewayDataSource({ name: 'elsewhere', endpoint, logger: pino({ level: 'silent' }), metrics: createMetrics() });
  };

  it('health checks and schema loading carry no caller identity', async () => {
    const client = new SubgraphHttpClient();
    const result = await dataSource(client, '/graphql').process(healthCheck('ignored'));
    await client.destroy();
    expect(result).toEqual({ data: { _entities: [] } });
    expect(elsewhereHits).toHaveLength(1);
    expect(elsewhereHits[0]).toMatchObject({ 'content-type': 'application/json' });
    expect(Object.keys(elsewhereHits[0]!).filter((name) => name.startsWith('x-') || name === 'traceparent')).toEqual([]);
  });

  it('closing the client cuts calls still in flight, as SUBGRAPH_UNAVAILABLE', async () => {
    const client = new SubgraphHttpClient();
    const pending = dataSource(client, '/stall').process(healthCheck('ignored'));
    const outcome = pending.then(() => 'answered', (error: { extensions?: { code?: string } }) => error.extensions?.code);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await client.destroy();
    expect(await outcome).toBe('SUBGRAPH_UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('subgraph connection pools across supergraph reloads', () => {
  const LIMITS = { timeoutMs: 2_000, maxResponseBytes: 1_000_000 };
  const RETIRE_AFTER_MS = 100;
  const servers: Server[] = [];
  afterAll(() => {
    for (const server of servers) {
      server.closeAllConnections();
      server.close();
    }
  });

  /** A subgraph host that counts the connections open to it. */
  async function subgraphHost() {
    const sockets = new Set<unknown>();
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{}}');
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.push(server);
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`, sockets };
  }
  const call = (endpoint: ReturnType<SubgraphHttpClient['endpoint']>) =>
    endpoint.post({ 'content-type': 'application/json' }, '{"query":"{__typename}"}').then(
      (response) => response.status,
      (error: { kind?: string }) => error.kind,
    );
  const waitFor = async (condition: () => boolean) => {
    for (let i = 0; i < 50 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    return condition();
  };

  it('closes the connections to an origin once no subgraph routes there, after calls already planned', async () => {
    const before = await subgraphHost();
    const after = await subgraphHost();
    const client = new SubgraphHttpClient(RETIRE_AFTER_MS);
    const inventory = client.endpoint('inventory', before.url, LIMITS);
    const orders = client.endpoint('orders', before.url, LIMITS);
    expect([await call(inventory), await call(orders)]).toEqual([200, 200]);
    const open = before.sockets.size;
    expect(open).toBeGreaterThan(0);

    // inventory moves; orders still uses the origin, so its connections stay.
    expect(await call(client.endpoint('inventory', after.url, LIMITS))).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 2 * RETIRE_AFTER_MS));
    expect(await call(orders)).toBe(200);
    expect(before.sockets.size).toBe(open);

    // orders moves too: an operation planned before the reload can still call the old origin...
    expect(await call(client.endpoint('orders', after.url, LIMITS))).toBe(200);
    expect(await call(orders)).toBe(200);
    // ...until the pool is retired, and then its connections are closed.
    expect(await waitFor(() => before.sockets.size === 0)).toBe(true);
    expect(await call(orders)).toBe('unavailable');
    expect(after.sockets.size).toBeGreaterThan(0);
    await client.destroy();
  });
});
