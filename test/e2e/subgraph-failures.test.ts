import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';
import { reviewsSubgraph } from '../helpers/reviews-subgraph.js';

type Mode = 'ok' | 'slow' | 'garbage-json' | 'html' | 'http-500';
let mode: Mode = 'ok';
let stack: Stack;
const QUERY = '{ products { name reviewCount } }';

beforeAll(async () => {
  stack = await startStack({
    definitions: [catalogSubgraph(), reviewsSubgraph()],
    env: { SUBGRAPH_REVIEWS_TIMEOUT_MS: '400', DEFAULT_TENANT_ID: 'acme' },
    configure: {
      reviews: {
        configure: (app) =>
          app.addHook('onRequest', async (_request, reply) => {
            if (mode === 'slow') await new Promise((resolve) => setTimeout(resolve, 3_000));
            if (mode === 'garbage-json') return reply.type('application/json').send('{"data": {"_entities": [');
            if (mode === 'html') return reply.type('text/html').send('<html>Bad gateway</html>');
            if (mode === 'http-500') return reply.code(500).type('text/plain').send('stack trace: secret internals');
          }),
      },
    },
  });
});
afterAll(() => stack.close());
beforeEach(() => {
  mode = 'ok';
});

function expectPartialProducts(body: Awaited<ReturnType<typeof postGraphQL>>['body'], code: string) {
  expect(body.data).toEqual({
    products: [
      { name: 'Anvil', reviewCount: null },
      { name: 'Rocket Skates', reviewCount: null },
      { name: 'Giant Magnet', reviewCount: null },
    ],
  });
  expect(body.errors).toHaveLength(1);
  expect(body.errors![0]!.extensions).toMatchObject({ code, serviceName: 'reviews' });
  expect(JSON.stringify(body)).not.toMatch(/secret internals|stack|ECONNREFUSED|_entities/);
}

describe('a failing subgraph gives partial data and a named error', () => {
  it('serves full data while the subgraph is healthy', async () => {
    const { body } = await postGraphQL(stack.url, { query: QUERY });
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({
      products: [
        { name: 'Anvil', reviewCount: 10 },
        { name: 'Rocket Skates', reviewCount: 11 },
        { name: 'Giant Magnet', reviewCount: 11 },
      ],
    });
  });

  it('slow: times out at the per-subgraph timeout instead of hanging', async () => {
    mode = 'slow';
    const started = Date.now();
    const { status, body } = await postGraphQL(stack.url, { query: QUERY });
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(status).toBe(200);
    expectPartialProducts(body, 'SUBGRAPH_TIMEOUT');
  });

  it('garbage JSON', async () => {
    mode = 'garbage-json';
    expectPartialProducts((await postGraphQL(stack.url, { query: QUERY })).body, 'SUBGRAPH_BAD_RESPONSE');
  });

  it('a non-JSON answer', async () => {
    mode = 'html';
    expectPartialProducts((await postGraphQL(stack.url, { query: QUERY })).body, 'SUBGRAPH_BAD_RESPONSE');
  });

  it('an HTTP 500, without leaking its body', async () => {
    mode = 'http-500';
    const { body } = await postGraphQL(stack.url, { query: QUERY });
    expectPartialProducts(body, 'SUBGRAPH_HTTP_ERROR');
    expect(body.errors![0]!.extensions).toMatchObject({ httpStatus: 500 });
  });

  it('down: connection refused, and the gateway keeps serving the rest', async () => {
    await stack.subgraphs.reviews!.close();
    const { body } = await postGraphQL(stack.url, { query: QUERY });
    expectPartialProducts(body, 'SUBGRAPH_UNAVAILABLE');

    const healthy = await postGraphQL(stack.url, { query: '{ products { name } }' });
    expect(healthy.body).toEqual({ data: { products: [{ name: 'Anvil' }, { name: 'Rocket Skates' }, { name: 'Giant Magnet' }] } });
    const live = await fetch(`${stack.url}/health`);
    expect(live.status).toBe(200);
  });
});
