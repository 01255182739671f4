import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashApiKey } from '../../src/auth/api-keys.js';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { DEADLINE_MS } from '../helpers/deadlines.js';
import { eventually } from '../helpers/eventually.js';
import { spawnGateway } from '../helpers/gateway-process.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';
import { rawRequest, startUpstream, type Upstream } from '../helpers/upstream.js';
import { RedisServer, hang } from '../helpers/redis-server.js';
import { sharedRedisUrl } from '../helpers/shared-redis.js';

const API_KEY = 'rl-test-key-0123456789';
const TYPENAME = { query: '{ __typename }' };
let userCounter = 0;
const freshUser = () => ({ sub: `rl-user-${Date.now()}-${++userCounter}` });

function writeConfig(content: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-rl-')), 'gateway.yaml');
  writeFileSync(file, stringify(content));
  return file;
}


describe('request rate limits on a shared Redis', () => {
  const REDIS_URL = sharedRedisUrl(12);
  let stack: Stack;
  let upstream: Upstream;

  beforeAll(async () => {
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    upstream = await startUpstream('limited');
    const file = writeConfig({
      apiKeys: [{ clientId: 'rl-client', sha256: hashApiKey(API_KEY), tenantId: 'acme' }],
      services: { limited: { upstreams: [{ url: upstream.url }] } },
      routes: [
        { prefix: '/api/v1/limited', service: 'limited' },
        { prefix: '/api/v1/tight', service: 'limited', rateLimit: { requests: 1, windowSeconds: 3600 } },
      ],
      rateLimits: {
        // One token back every 5 s: slow enough that a burst of four always lands inside one refill
        // period, even on a loaded machine.
        default: { requests: 3, windowSeconds: 15 },
        anonymous: { requests: 2, windowSeconds: 3600 },
        tiers: { free: { requests: 1, windowSeconds: 3600 } },
      },
    });
    stack = await startStack({
      definitions: [accountsSubgraph()],
      env: { GATEWAY_CONFIG: file, REDIS_URL, RATE_LIMIT_ENABLED: 'true', DEFAULT_TENANT_ID: 'acme' },
    });
  });
  afterAll(async () => {
    await stack.close();
    await upstream.close();
  });

  it('admits a burst, refuses the next with 429 and the headers, then refills', async () => {
    const auth = await stack.bearer(freshUser());
    const statuses: number[] = [];
    let last = await postGraphQL(stack.url, TYPENAME, auth);
    statuses.push(last.status);
    for (let i = 0; i < 3; i++) {
      last = await postGraphQL(stack.url, TYPENAME, auth);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(last.headers.get('retry-after')).toBe('5');
    expect(last.headers.get('ratelimit-policy')).toBe('"default";q=3;w=15, "authenticated";q=1000;w=3600');
    expect(last.headers.get('ratelimit')).toMatch(/^"default";r=0;t=15$/);
    expect(last.headers.get('x-ratelimit-limit')).toBe('3');
    expect(last.headers.get('x-ratelimit-remaining')).toBe('0');

    // A refused request takes no token, so polling until one is back is safe; it must come back
    // after the announced Retry-After, not before.
    const refusedAt = Date.now();
    await eventually(async () => expect((await postGraphQL(stack.url, TYPENAME, auth)).status).toBe(200), DEADLINE_MS, 250);
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(4_000);
    expect((await postGraphQL(stack.url, TYPENAME, auth)).status).toBe(429);
  });

  it('REST refusals are RFC 9457 problem+json with Retry-After', async () => {
    const auth = await stack.bearer(freshUser());
    expect((await rawRequest(stack.url, '/api/v1/tight/x', { headers: auth })).status).toBe(200);
    const refused = await rawRequest(stack.url, '/api/v1/tight/x', { headers: auth });
    expect(refused.status).toBe(429);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(JSON.parse(refused.body.toString())).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(1000);
    expect(refused.headers['ratelimit']).toMatch(/^"route-api-v1-tight";r=0;/);
  });

  it('separates callers: one user exhausted leaves other users, API keys and IPs untouched', async () => {
    const alice = await stack.bearer(freshUser());
    for (let i = 0; i < 3; i++) await postGraphQL(stack.url, TYPENAME, alice);
    expect((await postGraphQL(stack.url, TYPENAME, alice)).status).toBe(429);

    expect((await postGraphQL(stack.url, TYPENAME, await stack.bearer(freshUser()))).status).toBe(200);
    expect((await postGraphQL(stack.url, TYPENAME, { 'x-api-key': API_KEY })).status).toBe(200);
    const anonymous = await postGraphQL(stack.url, TYPENAME);
    expect(anonymous.status).toBe(200);
    expect(anonymous.headers.get('ratelimit-policy')).toContain('"anonymous";q=2;w=3600');
  });

  it('a tier policy replaces the class quota', async () => {
    const free = await stack.bearer({ ...freshUser(), subscription: { tier: 'free', status: 'active' } });
    const first = await postGraphQL(stack.url, TYPENAME, free);
    expect(first.headers.get('ratelimit-policy')).toBe('"default";q=3;w=15, "tier-free";q=1;w=3600');
    expect((await postGraphQL(stack.url, TYPENAME, free)).status).toBe(429);
  });
});

describe('two gateway processes on one Redis', () => {
  it('admit exactly the limit under 220 concurrent requests', async () => {
    const redisUrl = sharedRedisUrl(13);
    const redis = new Redis(redisUrl);
    await redis.flushdb();
    redis.disconnect();
    const env = {
      SUPERGRAPH_PATH: 'supergraph/supergraph.graphql',
      REDIS_URL: redisUrl,
      AUTH_GRAPHQL: 'optional',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_REQUESTS: '50',
      RATE_LIMIT_WINDOW_SECONDS: '3600',
    };
    const gateways = await Promise.all([spawnGateway(env), spawnGateway(env)]);
    try {
      const statuses = await Promise.all(
        Array.from({ length: 220 }, (_, i) => postGraphQL(gateways[i % 2]!.url, TYPENAME).then((r) => r.status)),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(50);
      expect(statuses.filter((s) => s === 429)).toHaveLength(170);
    } finally {
      for (const gateway of gateways) gateway.child.kill('SIGTERM');
      await Promise.all(gateways.map((g) => g.exited));
    }
  });
});

describe('concurrent requests on one gateway with Redis (decisions batched per event-loop turn)', () => {
  let redisServer: RedisServer;
  let stack: Stack;

  beforeAll(async () => {
    redisServer = await RedisServer.start();
    stack = await startStack({
      definitions: [accountsSubgraph()],
      env: {
        REDIS_URL: redisServer.url(),
        RATE_LIMIT_ENABLED: 'true',
        GATEWAY_CONFIG: writeConfig({
          rateLimits: { default: { requests: 40, windowSeconds: 3600 }, tenant: { requests: 50, windowSeconds: 3600 }, fallbackFactor: 0.5 },
        }),
      },
    });
  });
  afterAll(async () => {
    await stack.close();
    await redisServer.stop();
  });

  const burst = (auths: readonly Record<string, string>[], each: number) =>
    Promise.all(Array.from({ length: auths.length * each }, (_, i) => postGraphQL(stack.url, TYPENAME, auths[i % auths.length]!)));

  it('one caller: exactly the limit admitted, and each remaining count told to exactly one request', async () => {
    const answers = await burst([await stack.bearer(freshUser())], 100);
    const admitted = answers.filter((a) => a.status === 200);
    expect(admitted).toHaveLength(40);
    expect(admitted.map((a) => Number(a.headers.get('x-ratelimit-remaining'))).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused).toHaveLength(60);
    for (const answer of refused) {
      expect(answer.status).toBe(429);
      expect(answer.headers.get('x-ratelimit-remaining')).toBe('0');
      const retryAfter = Number(answer.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(90);
    }
  });

  it('callers of two tenants mixed in one burst: each caller its own count, the tenant ceiling (a second call) exact', async () => {
    const tenant = `t-${Date.now()}`;
    const acme = [await stack.bearer({ ...freshUser(), tenant_id: `${tenant}-a` }), await stack.bearer({ ...freshUser(), tenant_id: `${tenant}-a` })];
    const globex = await stack.bearer({ ...freshUser(), tenant_id: `${tenant}-g` });
    const answers = await burst([acme[0]!, globex, acme[1]!], 60);
    const admittedOf = (k: number) => answers.filter((a, i) => i % 3 === k && a.status === 200).length;
    // Each acme caller gets 40 from its own bucket; the tenant's 50 are shared between them.
    expect(admittedOf(0)).toBeLessThanOrEqual(40);
    expect(admittedOf(2)).toBeLessThanOrEqual(40);
    expect(admittedOf(0) + admittedOf(2)).toBe(50);
    expect(admittedOf(1)).toBe(40);
    for (const answer of answers) expect([200, 429]).toContain(answer.status);
  });

  it('a hung Redis (process stopped) during a burst: every request gets the local fallback within the bound, none hangs', async () => {
    const auth = await stack.bearer(freshUser());
    expect((await postGraphQL(stack.url, TYPENAME, auth)).status).toBe(200);
    const resume = await hang(redisServer);
    try {
      const timed = await Promise.all(
        Array.from({ length: 30 }, async () => {
          const started = Date.now();
          const answer = await postGraphQL(stack.url, TYPENAME, auth);
          return { status: answer.status, ms: Date.now() - started };
        }),
      );
      // Local buckets hold half the capacity (20), fresh: 20 admitted, the rest refused.
      expect(timed.filter((t) => t.status === 200)).toHaveLength(20);
      expect(timed.filter((t) => t.status === 429)).toHaveLength(10);
      for (const t of timed) expect(t.ms).toBeLessThan(1_500);
    } finally {
      resume();
    }
  });
});

describe('Redis outage', () => {
  let redisServer: RedisServer;
  let port: number;
  const startRedis = () => redisServer.restart();
  const stopRedis = () => redisServer.stop();

  beforeAll(async () => {
    redisServer = await RedisServer.start();
    port = redisServer.port;
  });
  afterAll(() => redisServer.stop());

  async function timed(url: string) {
    const started = Date.now();
    const response = await postGraphQL(url, TYPENAME);
    return { status: response.status, ms: Date.now() - started, code: response.body.errors?.[0]?.extensions?.code };
  }

  it('fail-open: local buckets (scaled down) take over without hanging, and Redis takes back over when it returns', async () => {
    const open = await startStack({
      definitions: [accountsSubgraph()],
      env: {
        REDIS_URL: `redis://127.0.0.1:${port}`,
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_REQUESTS: '4',
        RATE_LIMIT_WINDOW_SECONDS: '3600',
        GATEWAY_CONFIG: writeConfig({ rateLimits: { anonymous: { requests: 100, windowSeconds: 3600 }, fallbackFactor: 0.5 } }),
      },
    });
    const failovers = async () => (await open.gateway.metrics.rateLimitStoreFailovers.get()).values[0]?.value ?? 0;
    try {
      expect((await timed(open.url)).status).toBe(200);
      await stopRedis();
      const during = [await timed(open.url), await timed(open.url), await timed(open.url)];
      // Local bucket: 4 × 0.5 = 2 requests, then 429; nothing waits on the dead Redis for long.
      expect(during.map((r) => r.status)).toEqual([200, 200, 429]);
      for (const r of during) expect(r.ms).toBeLessThan(1_500);
      expect(await failovers()).toBe(1);

      await startRedis();
      await eventually(async () => expect((await timed(open.url)).status).toBe(200), DEADLINE_MS, 250);
      expect(await failovers()).toBe(1);
    } finally {
      await open.close();
    }
  });

  it('fail-closed: refuses with 503 while Redis is down, serves again when it returns', async () => {
    const closed = await startStack({
      definitions: [accountsSubgraph()],
      env: { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ON_STORE_FAILURE: 'closed' },
    });
    try {
      expect((await timed(closed.url)).status).toBe(200);
      await stopRedis();
      const refused = await timed(closed.url);
      expect(refused).toMatchObject({ status: 503, code: 'RATE_LIMIT_UNAVAILABLE' });
      expect(refused.ms).toBeLessThan(1_500);
      await startRedis();
      await eventually(async () => expect((await timed(closed.url)).status).toBe(200), DEADLINE_MS, 250);
    } finally {
      await closed.close();
    }
  });
});

describe('field-level limits (@rateLimit from the supergraph, and configuration)', () => {
  const REDIS_URL = sharedRedisUrl(14);
  let stack: Stack;
  let catalogCalls = 0;

  beforeAll(async () => {
    const redis = new Redis(REDIS_URL);
    await redis.flushdb();
    redis.disconnect();
    stack = await startStack({
      env: {
        REDIS_URL,
        GATEWAY_CONFIG: writeConfig({ fieldRateLimits: { 'Query.product': { max: 2, window: '1m' } } }),
      },
      configure: { catalog: { configure: (app) => app.addHook('onRequest', async () => void catalogCalls++) } },
    });
  });
  afterAll(() => stack.close());

  it('a directive limit from the supergraph (Query.search: 30 per minute) refuses the 31st call, naming the field', async () => {
    const auth = await stack.bearer(freshUser());
    for (let i = 0; i < 30; i++) {
      const { body } = await postGraphQL(stack.url, { query: '{ search(term: "a") { upc } }' }, auth);
      expect(body.errors).toBeUndefined();
    }
    const before = catalogCalls;
    const refused = await postGraphQL(stack.url, { query: '{ search(term: "a") { upc } }' }, auth);
    expect(refused.body.errors?.[0]).toMatchObject({ path: ['search'], extensions: { code: 'RATE_LIMITED' } });
    expect(refused.body.errors?.[0]?.message).toMatch(/Query\.search/);
    expect(catalogCalls).toBe(before); // nothing left to run: the subgraph is not called

    // Another caller has its own allowance.
    const other = await postGraphQL(stack.url, { query: '{ search(term: "a") { upc } }' }, await stack.bearer(freshUser()));
    expect(other.body.errors).toBeUndefined();
  });

  it('aliased repeats count; only the over-limit occurrences are removed', async () => {
    const auth = await stack.bearer(freshUser());
    const { body } = await postGraphQL(
      stack.url,
      { query: '{ a: product(upc: "acme-anvil") { name } b: product(upc: "acme-magnet") { name } c: product(upc: "acme-skates") { name } }' },
      auth,
    );
    expect(body.data).toEqual({ a: { name: 'Anvil' }, b: { name: 'Giant Magnet' }, c: null });
    expect(body.errors).toEqual([expect.objectContaining({ path: ['c'], extensions: expect.objectContaining({ code: 'RATE_LIMITED' }) })]);
  });

  it('an operation the admission stage refuses spends no field rate-limit tokens', async () => {
    const auth = await stack.bearer(freshUser());
    // 21 aliases: refused (TOO_MANY_ALIASES) before the field rate limits, three times over.
    const aliases = Array.from({ length: 21 }, (_, i) => `p${i}: product(upc: "acme-anvil") { name }`).join(' ');
    for (let i = 0; i < 3; i++) {
      const refused = await postGraphQL(stack.url, { query: `{ ${aliases} }` }, auth);
      expect(refused.status).toBe(400);
      expect(refused.body.errors?.[0]?.extensions?.code).toBe('TOO_MANY_ALIASES');
    }
    // The caller's whole allowance (2 per minute) is still there.
    const { body } = await postGraphQL(stack.url, { query: '{ a: product(upc: "acme-anvil") { name } b: product(upc: "acme-magnet") { name } }' }, auth);
    expect(body.errors).toBeUndefined();
    expect(body.data).toEqual({ a: { name: 'Anvil' }, b: { name: 'Giant Magnet' } });

    // A read-only tenant's mutation is refused before the limits too: 11 refusals of placeOrder
    // (10 per minute) leave the same user's allowance untouched once the tenant may write again.
    const user = freshUser();
    const readOnly = await stack.bearer({ ...user, read_only: true });
    const place = { query: 'mutation { placeOrder(items: [{ upc: "acme-anvil", quantity: 1 }]) { id } }' };
    for (let i = 0; i < 11; i++) {
      expect((await postGraphQL(stack.url, place, readOnly)).body.errors?.[0]?.extensions?.code).toBe('TENANT_READ_ONLY');
    }
    const placed = await postGraphQL(stack.url, place, await stack.bearer(user));
    expect(placed.body.errors).toBeUndefined();
  });

  it('counters live in the shared store', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      expect((await redis.keys('redis-store-id::*')).length).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
  });
});

describe('brute-force protection', () => {
  it('an IP with too many failed authentications is refused before any check, even with a valid token', async () => {
    const stack = await startStack({
      definitions: [accountsSubgraph()],
      env: { RATE_LIMIT_ENABLED: 'true', GATEWAY_CONFIG: writeConfig({ rateLimits: { authFailures: { requests: 3, windowSeconds: 60 } } }) },
    });
    try {
      for (let i = 0; i < 4; i++) {
        const guess = await postGraphQL(stack.url, TYPENAME, { 'x-api-key': `guess-${i}-000000000000000` });
        expect(guess.status).toBe(401);
      }
      const locked = await postGraphQL(stack.url, TYPENAME, await stack.bearer(freshUser()));
      expect(locked.status).toBe(429);
      expect(locked.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await stack.close();
    }
  });
});
