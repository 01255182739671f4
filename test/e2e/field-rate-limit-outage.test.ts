import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { eventually } from '../helpers/eventually.js';
import { RedisServer, hang } from '../helpers/redis-server.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

/**
 * Field `@rateLimit` counters live in Redis like request limits, and follow the same outage policy
 * (RATE_LIMIT_ON_STORE_FAILURE): a hung Redis (process stopped, connection open) costs at most one
 * bounded wait, then `open` counts locally and `closed` refuses the limited fields with
 * RATE_LIMIT_UNAVAILABLE. Neither waits on the hung server request after request.
 */

// The gateway gives Redis 500 ms per call; ioredis's own backstop is 2 s. One request must stay well under it.
const BOUNDED_MS = 1_500;
const TWO_PRODUCTS = { query: '{ a: product(upc: "acme-anvil") { name } b: product(upc: "acme-magnet") { name } }' };

function writeConfig(content: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-field-rl-')), 'gateway.yaml');
  writeFileSync(file, stringify(content));
  return file;
}

async function timed(stack: Stack, body: unknown, headers: Record<string, string>) {
  const started = Date.now();
  const response = await postGraphQL(stack.url, body, headers);
  return { ...response, ms: Date.now() - started };
}


function fixture(env: Record<string, string>) {
  const state: { server?: RedisServer; stack?: Stack } = {};
  beforeAll(async () => {
    state.server = await RedisServer.start();
    state.stack = await startStack({
      definitions: [catalogSubgraph()],
      env: {
        REDIS_URL: state.server.url(),
        DEFAULT_TENANT_ID: 'acme',
        GATEWAY_CONFIG: writeConfig({ fieldRateLimits: { 'Query.product': { max: 2, window: '1m' } }, rateLimits: { fallbackFactor: 0.5 } }),
        ...env,
      },
    });
  });
  afterAll(async () => {
    await state.stack?.close();
    await state.server?.stop();
  });
  return state as { server: RedisServer; stack: Stack };
}

describe('field rate limits while Redis hangs, fail-open (the default)', () => {
  const state = fixture({});

  it('count locally with the limit scaled by the fallback factor, without waiting on Redis each time', async () => {
    const { server, stack } = state;
    const auth = await stack.bearer({ sub: 'field-open-user' });
    expect((await timed(stack, { query: '{ a: product(upc: "acme-anvil") { name } }' }, auth)).body.errors).toBeUndefined();
    const resume = await hang(server);
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await timed(stack, TWO_PRODUCTS, auth));
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.ms).toBeLessThan(BOUNDED_MS);
      }
      // Locally 2 × 0.5 = 1 per minute: the first occurrence passes, the others are refused.
      expect(answers[0]!.body.data).toEqual({ a: { name: 'Anvil' }, b: null });
      expect(answers[0]!.body.errors).toEqual([expect.objectContaining({ path: ['b'], extensions: expect.objectContaining({ code: 'RATE_LIMITED' }) })]);
      expect(answers[2]!.body.data).toEqual({ a: null, b: null });
      const readiness = await fetch(`${stack.url}/health/ready`);
      expect(await readiness.json()).toMatchObject({ dependencies: { redis: { status: 'down', policies: { fieldRateLimits: 'open' } } } });
      const fallbacks = (await stack.gateway.metrics.registry.getSingleMetric('gateway_redis_fallbacks_total')!.get()).values;
      expect(fallbacks.find((v) => v.labels.feature === 'fieldRateLimits')?.value).toBe(3); // one per request
    } finally {
      resume();
    }
    await eventually(async () => expect((await fetch(`${stack.url}/health/ready`)).status).toBe(200));
  });
});

describe('field rate limits while Redis hangs, fail-closed', () => {
  // Request limits off: with them on, fail-closed refuses the whole request before any field is looked at.
  const state = fixture({ RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_ON_STORE_FAILURE: 'closed' });

  it('refuse only the limited fields with RATE_LIMIT_UNAVAILABLE, at once, and count again when Redis answers', async () => {
    const { server, stack } = state;
    const auth = await stack.bearer({ sub: 'field-closed-user' });
    const query = { query: '{ a: product(upc: "acme-anvil") { name } products(first: 1) { upc } }' };
    expect((await timed(stack, query, auth)).body.errors).toBeUndefined();
    const resume = await hang(server);
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await timed(stack, query, auth);
        expect(answer.ms).toBeLessThan(BOUNDED_MS);
        expect(answer.status).toBe(200);
        expect(answer.body.data).toEqual({ a: null, products: [{ upc: 'acme-anvil' }] });
        expect(answer.body.errors).toEqual([
          expect.objectContaining({ path: ['a'], message: expect.stringMatching(/^Query\.product: /), extensions: expect.objectContaining({ code: 'RATE_LIMIT_UNAVAILABLE' }) }),
        ]);
      }
    } finally {
      resume();
    }
    await eventually(async () => expect((await fetch(`${stack.url}/health/ready`)).status).toBe(200));
    // Shared counters again: one call was spent before the outage, one remains.
    const after = await timed(stack, TWO_PRODUCTS, auth);
    expect(after.body.data).toEqual({ a: { name: 'Anvil' }, b: null });
  });
});
