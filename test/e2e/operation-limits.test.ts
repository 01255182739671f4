import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

let stack: Stack;
let subgraphCalls = 0;
const countCalls = { configure: (app: import('fastify').FastifyInstance) => app.addHook('onRequest', async () => void subgraphCalls++) };

beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-limits-')), 'gateway.yaml');
  writeFileSync(
    file,
    stringify({
      operationLimits: {
        maxDepth: 4,
        maxAliases: 5,
        maxDirectives: 5,
        maxRootFields: 4,
        maxTokens: 1000,
        maxCost: 1000,
        fieldCosts: { 'Query.users': 150 },
      },
    }),
  );
  stack = await startStack({
    env: { GATEWAY_CONFIG: file, DEFAULT_TENANT_ID: 'acme' },
    configure: { accounts: countCalls, catalog: countCalls, inventory: countCalls, orders: countCalls },
  });
});
afterAll(() => stack.close());

async function expectRefused(query: string, code: string, variables?: Record<string, unknown>) {
  const before = subgraphCalls;
  const { status, body } = await postGraphQL(stack.url, { query, variables });
  expect(body.errors?.[0]?.extensions?.code).toBe(code);
  expect(status).toBe(400);
  expect(body.data).toBeUndefined();
  expect(subgraphCalls).toBe(before); // refused before planning: no subgraph saw anything
  return body;
}

describe('GraphQL operation limits', () => {
  it('admits an ordinary federated query', async () => {
    const { body } = await postGraphQL(stack.url, { query: '{ orders { id items { product { name } } } }' });
    expect(body.errors).toBeUndefined();
  });

  it('depth bomb', async () => {
    await expectRefused('{ orders { items { product { name } } buyer { orders { items { product { name } } } } } }', 'OPERATION_TOO_DEEP');
  });

  it('alias bomb', async () => {
    const aliases = Array.from({ length: 6 }, (_, i) => `a${i}: products { upc }`).join(' ');
    await expectRefused(`{ ${aliases} }`, 'TOO_MANY_ALIASES');
  });

  it('directive bomb', async () => {
    await expectRefused(
      '{ products { upc @include(if: true) name @include(if: true) price @include(if: true) weight @include(if: true) inStock @include(if: true) quantity @include(if: true) } }',
      'TOO_MANY_DIRECTIVES',
    );
  });

  it('too many root fields', async () => {
    await expectRefused('{ products { upc } orders { id } users { id } me { id } whoami { userId } }', 'TOO_MANY_ROOT_FIELDS');
  });

  it('token bomb (refused before parsing)', async () => {
    await expectRefused(`{ products { ${'upc '.repeat(1100)} } }`, 'TOO_MANY_TOKENS');
  });

  it('cost bomb: list sizes multiply, from literals and variables', async () => {
    const body = await expectRefused('{ products(first: 5000) { upc name price inStock shippingEstimate } }', 'OPERATION_TOO_COMPLEX');
    expect(body.errors?.[0]?.message).toMatch(/cost is \d+; the limit is 1000/);
    await expectRefused('query ($n: Int) { products(first: $n) { upc name } }', 'OPERATION_TOO_COMPLEX', { n: 5000 });
    const small = await postGraphQL(stack.url, { query: 'query ($n: Int) { products(first: $n) { upc name } }', variables: { n: 2 } });
    expect(small.body.errors).toBeUndefined();
  });

  it('per-field cost overrides from configuration', async () => {
    await expectRefused('{ users { id } products(first: 10) { upc } }', 'OPERATION_TOO_COMPLEX');
  });

  it('fragment bomb: nested spreads are counted expanded, in linear time', async () => {
    const spreads = (name: string) => Array.from({ length: 45 }, () => `...${name}`).join(' ');
    const query = `{ products { ...F3 } }
      fragment F0 on Product { upc }
      fragment F1 on Product { ${spreads('F0')} }
      fragment F2 on Product { ${spreads('F1')} }
      fragment F3 on Product { ${spreads('F2')} }`;
    const started = Date.now();
    const body = await expectRefused(query, 'OPERATION_TOO_LARGE');
    expect(body.errors?.[0]?.message).toMatch(/expands to 91126 field selections/);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('negative list sizes and omitted variables with defaults cannot lower the cost', async () => {
    await expectRefused('{ a: products(first: 5000) { upc } b: products(first: -5000) { upc } }', 'OPERATION_TOO_COMPLEX');
    await expectRefused('query ($n: Int = 5000) { products(first: $n) { upc name } }', 'OPERATION_TOO_COMPLEX');
  });

  it('query text over the character limit', async () => {
    await expectRefused(`{ products { upc } } # ${'x'.repeat(25_000)}`, 'QUERY_TOO_LARGE');
  });
});

describe('cost with default settings (measured, not enforced)', () => {
  // A nested list query well above the old 5000 default: it must run, and its cost must be visible.
  const heavy = '{ orders { items { product { name } } } products(first: 100000) { upc name } }';
  const lines: Record<string, unknown>[] = [];
  const logStream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  let defaults: Stack;
  beforeAll(async () => {
    defaults = await startStack({
      logger: { level: 'info', stream: logStream },
      env: { DEFAULT_TENANT_ID: 'acme', GRAPHQL_COST_IN_RESPONSE: 'true' },
    });
  });
  afterAll(() => defaults.close());

  it('runs a costly query and reports its estimated cost in the response, the log line and a metric', async () => {
    const { status, body } = await postGraphQL(defaults.url, { query: heavy });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const cost = (body as { extensions?: { cost?: { estimated?: number; max?: number } } }).extensions?.cost;
    expect(cost?.estimated).toBeGreaterThan(100_000);
    expect(cost?.max).toBeUndefined();

    // The line is written once the response has gone out.
    const line = await vi.waitFor(() => {
      const found = lines.find((l) => l.msg === 'request completed' && l.route === '/graphql');
      if (!found) throw new Error('no request line yet');
      return found;
    });
    expect(line.estimatedCost).toBe(cost?.estimated);

    const metrics = await (await fetch(`${defaults.url}/metrics`)).text();
    expect(metrics).toMatch(/gateway_graphql_operation_cost_count\{operation_type="query"\} [1-9]/);
  });

  it('still enforces depth, alias and token limits', async () => {
    const deep = `{ orders { buyer { orders { buyer { orders { buyer { orders { buyer { orders { buyer { orders { buyer { orders { id } } } } } } } } } } } } } }`;
    const { status, body } = await postGraphQL(defaults.url, { query: deep });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions?.code).toBe('OPERATION_TOO_DEEP');
    const aliases = Array.from({ length: 21 }, (_, i) => `a${i}: products { upc }`).join(' ');
    expect((await postGraphQL(defaults.url, { query: `{ ${aliases} }` })).body.errors?.[0]?.extensions?.code).toBe('TOO_MANY_ALIASES');
    expect((await postGraphQL(defaults.url, { query: `{ products { ${'upc '.repeat(2100)} } }` })).body.errors?.[0]?.extensions?.code).toBe(
      'TOO_MANY_TOKENS',
    );
  });
});

describe('enforced cost in the response extension', () => {
  it('reports the configured maximum alongside the estimate', async () => {
    const enforced = await startStack({ env: { DEFAULT_TENANT_ID: 'acme', GRAPHQL_MAX_COST: '50', GRAPHQL_COST_IN_RESPONSE: 'true' } });
    try {
      const small = await postGraphQL(enforced.url, { query: '{ products(first: 3) { upc } }' });
      expect((small.body as { extensions?: { cost?: unknown } }).extensions?.cost).toEqual({ estimated: 3, max: 50 });
      const big = await postGraphQL(enforced.url, { query: '{ products(first: 51) { upc } }' });
      expect(big.status).toBe(400);
      expect(big.body.errors?.[0]?.extensions?.code).toBe('OPERATION_TOO_COMPLEX');
    } finally {
      await enforced.close();
    }
  });
});

describe('production mode', () => {
  it('disables introspection and field suggestions', async () => {
    const production = await startStack({ env: { NODE_ENV: 'production', DEFAULT_TENANT_ID: 'acme' } });
    try {
      const introspection = await postGraphQL(production.url, { query: '{ __schema { types { name } } }' });
      expect(introspection.status).toBe(400);
      expect(introspection.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(introspection.body.errors?.[0]?.message).toMatch(/introspection/i);

      const typo = await postGraphQL(production.url, { query: '{ prodcts { upc } }' });
      expect(typo.body.errors?.[0]?.message).not.toMatch(/Did you mean/);

      const development = await postGraphQL(stack.url, { query: '{ prodcts { upc } }' });
      expect(development.body.errors?.[0]?.message).toMatch(/Did you mean "products"/);

      // No IDE in production: a browser gets the usual GraphQL answer.
      const ide = await fetch(`${production.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(await ide.text()).not.toContain('graphiql');
    } finally {
      await production.close();
    }
  });
});
