import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { RedisApiKeys } from '../../src/auth/api-keys.js';
import { sha256 } from '../../src/graphql/persisted-queries.js';
import { LastKnown } from '../../src/stores/last-known.js';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { eventually } from '../helpers/eventually.js';
import { RedisServer, hang } from '../helpers/redis-server.js';
import { startStack, type Stack, type StackOptions } from '../helpers/stack.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/**
 * Every Redis-backed feature while a real Redis is killed and brought back: each follows its
 * policy, nothing answers 500, nothing waits on the dead server, readiness names the dependency,
 * and everything is back after the restart without restarting the gateway.
 */

const WHOAMI = { query: '{ whoami { userId tenantId } }' };
const restock = (upc: string) => ({ query: `mutation { restock(upc: "${upc}", quantity: 1) { quantity } }` });
const persisted = (query: string) => ({ persistedQuery: { version: 1, sha256Hash: sha256(query) } });
const now = () => Math.floor(Date.now() / 1000);
// The gateway's Redis commands time out after 500 ms; one request must never cost much more.
const BOUNDED_MS = 1_500;

function writeConfig(content: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-redis-down-')), 'gateway.yaml');
  writeFileSync(file, stringify(content));
  return file;
}

function captureLogs() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, logger: { level: 'info', stream } };
}

interface Answer {
  status: number;
  code: unknown;
  ms: number;
  body: Record<string, unknown>;
}

/** One call through the gateway, timed, with the error code whichever shape it came in. */
async function call(stack: Stack, path: string, init: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer> {
  const started = Date.now();
  const response = await fetch(`${stack.url}${path}`, {
    method: init.body === undefined ? 'GET' : 'POST',
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await response.text();
  const body = (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown> & { errors?: { extensions?: { code?: unknown } }[]; code?: unknown };
  return { status: response.status, code: body.errors?.[0]?.extensions?.code ?? body.code, ms: Date.now() - started, body };
}

const graphql = (stack: Stack, body: unknown, headers: Record<string, string> = {}) => call(stack, '/graphql', { body, headers });
const ready = (stack: Stack) => call(stack, '/health/ready');

async function metricValue(stack: Stack, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = stack.gateway.metrics.registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

interface OutageFixtureOptions extends Pick<StackOptions, 'logger' | 'definitions'> {
  env: Record<string, string>;
  /** Also route `/api/v1/plain` to a REST upstream of its own. */
  restRoute?: boolean;
}

/**
 * A gateway on a redis-server of its own (the tests kill, stop and restart it), an admin client that
 * writes into it as other services would, and optionally one REST route; ready before the tests run.
 */
function outageFixture(options: OutageFixtureOptions) {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  let upstream: Upstream | undefined;
  let stack: Stack | undefined;
  return {
    async start(): Promise<{ server: RedisServer; admin: Redis; stack: Stack }> {
      server = await RedisServer.start();
      admin = new Redis(server.url(), { maxRetriesPerRequest: 0 });
      admin.on('error', () => {}); // the tests take this server down on purpose
      upstream = options.restRoute ? await startUpstream('plain') : undefined;
      const routes: Record<string, string> = upstream
        ? { GATEWAY_CONFIG: writeConfig({ services: { plain: { upstreams: [{ url: upstream.url }] } }, routes: [{ prefix: '/api/v1/plain', service: 'plain' }] }) }
        : {};
      stack = await startStack({
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.definitions ? { definitions: options.definitions } : {}),
        env: { REDIS_URL: server.url(), ...routes, ...options.env },
      });
      const started = stack;
      await eventually(async () => expect((await ready(started)).status).toBe(200));
      return { server, admin, stack };
    },
    async stop(): Promise<void> {
      await stack?.close();
      await upstream?.close();
      admin?.disconnect();
      await server?.stop();
    },
  };
}

describe('Redis outage with the default policies (fail-open, last-known values)', () => {
  const logs = captureLogs();
  let server: RedisServer;
  let admin: Redis;
  let stack: Stack;
  const SEEN_KEY = 'seen-key-0123456789abcdef';
  const UNSEEN_KEY = 'unseen-key-0123456789abcdef';
  const APQ_QUERY = '{ whoami { tenantId } }';
  const fixture = outageFixture({ logger: logs.logger, env: { RATE_LIMIT_ENABLED: 'true' }, restRoute: true });
  beforeAll(async () => ({ server, admin, stack } = await fixture.start()));
  afterAll(() => fixture.stop());

  /** What the tests write into Redis, as other services would; also after a restart (it comes back empty). */
  async function seed(): Promise<void> {
    await admin.set('tenant:globex:read_only', '1');
    await admin.set('tenant:acme:subscription_changed_at', String(now() - 60));
    const keys = new RedisApiKeys(admin);
    await keys.add(SEEN_KEY, { clientId: 'seen-client', tenantId: 'acme', roles: [], permissions: [], tier: 'standard' });
    await keys.add(UNSEEN_KEY, { clientId: 'unseen-client', tenantId: 'acme', roles: [], permissions: [], tier: 'standard' });
  }

  it('serves every feature per its policy while Redis is down, and everything comes back after a restart', async () => {
    await seed();
    const acme = await stack.bearer({ tenant_id: 'acme' });
    const staleAcme = await stack.bearer({ tenant_id: 'acme', iat: now() - 600 });
    const globex = await stack.bearer({ sub: 'u-globex-1', tenant_id: 'globex' });
    const initech = await stack.bearer({ sub: 'u-initech-1', tenant_id: 'initech' });
    const publisher = await stack.bearer({ sub: 'u-acme-publisher', tenant_id: 'acme', roles: ['publisher'] });

    // Before: the values the gateway will remember (tenants it saw, a key it verified, an APQ hash).
    expect((await graphql(stack, WHOAMI, acme)).status).toBe(200);
    expect((await graphql(stack, WHOAMI, staleAcme)).code).toBe('TOKEN_STALE');
    expect((await graphql(stack, restock('globex-lamp'), globex)).code).toBe('TENANT_READ_ONLY');
    expect((await graphql(stack, WHOAMI, { 'x-api-key': SEEN_KEY })).status).toBe(200);
    expect((await graphql(stack, { query: APQ_QUERY, extensions: persisted(APQ_QUERY) }, acme)).status).toBe(200);
    expect((await graphql(stack, { extensions: persisted(APQ_QUERY) }, acme)).body).toEqual({ data: { whoami: { tenantId: 'acme' } } });
    expect((await ready(stack)).body).toMatchObject({ status: 'ready', dependencies: { redis: { status: 'up' } } });
    const outagesBefore = await metricValue(stack, 'gateway_redis_outages_total');

    await server.stop();
    const answers: Answer[] = [];
    const during = async (answer: Promise<Answer>) => {
      answers.push(await answer);
      return answers.at(-1)!;
    };

    // GraphQL and REST keep serving.
    expect(await during(graphql(stack, WHOAMI, acme))).toMatchObject({ status: 200, body: { data: { whoami: { userId: 'u-acme-1', tenantId: 'acme' } } } });
    expect((await during(call(stack, '/api/v1/plain/x', { headers: acme }))).status).toBe(200);
    // Tenant flags and token freshness: last-known values for tenants seen recently...
    expect(await during(graphql(stack, restock('globex-lamp'), globex))).toMatchObject({ status: 403, code: 'TENANT_READ_ONLY' });
    expect((await during(graphql(stack, WHOAMI, globex))).status).toBe(200);
    expect(await during(graphql(stack, WHOAMI, staleAcme))).toMatchObject({ status: 401, code: 'TOKEN_STALE' });
    // ...and no flags (fail-open) for a tenant never seen.
    expect(await during(graphql(stack, WHOAMI, initech))).toMatchObject({ status: 200, body: { data: { whoami: { userId: 'u-initech-1', tenantId: 'initech' } } } });
    // API keys in Redis: a key verified recently keeps working; an unknown one is 503, never 401.
    expect(await during(graphql(stack, WHOAMI, { 'x-api-key': SEEN_KEY }))).toMatchObject({ status: 200, body: { data: { whoami: { userId: 'seen-client' } } } });
    expect(await during(graphql(stack, WHOAMI, { 'x-api-key': UNSEEN_KEY }))).toMatchObject({ status: 503, code: 'AUTH_UNAVAILABLE' });
    const restRefusal = await during(call(stack, '/api/v1/plain/x', { headers: { 'x-api-key': UNSEEN_KEY } }));
    expect(restRefusal).toMatchObject({ status: 503, code: 'AUTH_UNAVAILABLE', body: { status: 503, type: 'urn:gateway:error:auth-unavailable' } });
    // APQ: a miss, so the client sends the text, which runs.
    expect(await during(graphql(stack, { extensions: persisted(APQ_QUERY) }, acme))).toMatchObject({ code: 'PERSISTED_QUERY_NOT_FOUND' });
    expect(await during(graphql(stack, { query: APQ_QUERY, extensions: persisted(APQ_QUERY) }, acme))).toMatchObject({
      status: 200,
      body: { data: { whoami: { tenantId: 'acme' } } },
    });
    // Events need the bus: publishing and new streams are refused with 503, never 500.
    expect(await during(call(stack, '/api/v1/alerts', { headers: publisher, body: { type: 'alert', data: { n: 1 } } }))).toMatchObject({
      status: 503,
      code: 'EVENTS_UNAVAILABLE',
    });
    expect(await during(call(stack, '/api/v1/alerts/stream', { headers: acme }))).toMatchObject({ status: 503, code: 'EVENTS_UNAVAILABLE' });

    for (const answer of answers) {
      expect(answer.status).not.toBe(500);
      expect(answer.ms).toBeLessThan(BOUNDED_MS);
    }
    // Ready (every policy here is fail-open), but the body says what is degraded and how.
    const readiness = await ready(stack);
    expect(readiness.status).toBe(200);
    expect(readiness.body).toMatchObject({
      status: 'degraded',
      dependencies: {
        redis: {
          status: 'down',
          policies: { rateLimits: 'open', tenantFlags: 'open', tokenFreshness: 'open', apiKeys: 'last-known', persistedQueries: 'miss' },
        },
      },
    });
    // One outage: logged once and counted once, however many requests ran into it.
    expect(await metricValue(stack, 'gateway_redis_outages_total')).toBe(outagesBefore + 1);
    expect(await metricValue(stack, 'gateway_redis_fallbacks_total', { feature: 'apiKeys' })).toBeGreaterThanOrEqual(2);
    expect(logs.lines.filter((line) => line.includes('redis unavailable'))).toHaveLength(1);

    await server.restart();
    await eventually(async () => expect((await ready(stack)).body).toMatchObject({ status: 'ready', dependencies: { redis: { status: 'up' } } }));
    // The restarted Redis is empty: what it says now is what counts, without a gateway restart.
    expect((await graphql(stack, WHOAMI, { 'x-api-key': SEEN_KEY })).code).toBe('INVALID_API_KEY');
    expect((await graphql(stack, restock('globex-lamp'), globex)).body).toEqual({ data: { restock: { quantity: expect.any(Number) } } });
    await seed();
    expect((await graphql(stack, restock('globex-lamp'), globex)).code).toBe('TENANT_READ_ONLY');
    expect((await graphql(stack, WHOAMI, { 'x-api-key': UNSEEN_KEY })).body).toEqual({ data: { whoami: { userId: 'unseen-client', tenantId: 'acme' } } });
    expect((await graphql(stack, { extensions: persisted(APQ_QUERY) }, acme)).code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect((await graphql(stack, { query: APQ_QUERY, extensions: persisted(APQ_QUERY) }, acme)).status).toBe(200);
    expect((await graphql(stack, { extensions: persisted(APQ_QUERY) }, acme)).body).toEqual({ data: { whoami: { tenantId: 'acme' } } });
    expect(logs.lines.filter((line) => line.includes('redis available again'))).toHaveLength(1);
  });

  it('a Redis that stops answering (process stopped, connection open) costs bounded waits, and is noticed when it answers again', async () => {
    const acme = await stack.bearer({ tenant_id: 'acme' });
    expect((await graphql(stack, WHOAMI, acme)).status).toBe(200);
    const resume = await hang(admin);
    try {
      // A tenant seen before is answered from memory (its flags are cached while Redis tracks them), so
      // the hang is noticed by the tracking connection's heartbeat, not by the first request.
      const answers: Answer[] = [];
      await eventually(async () => {
        answers.push(await graphql(stack, WHOAMI, acme));
        expect((await ready(stack)).body).toMatchObject({ status: 'degraded', dependencies: { redis: { status: 'down' } } });
      }, 5_000, 100);
      for (const answer of answers) expect(answer.status).toBe(200);
      for (const answer of answers) expect(answer.ms).toBeLessThan(BOUNDED_MS);
    } finally {
      resume();
    }
    await eventually(async () => expect((await ready(stack)).body).toMatchObject({ status: 'ready' }));
  });
});

describe('Redis outage with fail-closed policies', () => {
  let server: RedisServer;
  let admin: Redis;
  let stack: Stack;
  const KEY = 'closed-key-0123456789abcdef';
  const fixture = outageFixture({
    env: { TENANT_FLAGS_ON_STORE_FAILURE: 'closed', TOKEN_FRESHNESS_ON_STORE_FAILURE: 'closed' },
    restRoute: true,
  });
  beforeAll(async () => ({ server, admin, stack } = await fixture.start()));
  afterAll(() => fixture.stop());

  it('refuses what it cannot check with 503 and a code, fails readiness, and serves again after a restart', async () => {
    await new RedisApiKeys(admin).add(KEY, { clientId: 'closed-client', tenantId: 'acme', roles: [], permissions: [], tier: 'standard' });
    const acme = await stack.bearer({ tenant_id: 'acme' });
    const globex = await stack.bearer({ sub: 'u-globex-1', tenant_id: 'globex' });
    expect((await graphql(stack, WHOAMI, acme)).status).toBe(200);
    expect((await graphql(stack, WHOAMI, { 'x-api-key': KEY })).status).toBe(200);

    await server.stop();
    const answers: Answer[] = [];
    const during = async (answer: Promise<Answer>) => {
      answers.push(await answer);
      return answers.at(-1)!;
    };
    // A tenant read within REDIS_LAST_KNOWN_SECONDS still has its flags; another cannot be checked.
    expect((await during(graphql(stack, WHOAMI, acme))).status).toBe(200);
    expect((await during(graphql(stack, WHOAMI, { 'x-api-key': KEY }))).status).toBe(200);
    expect(await during(graphql(stack, WHOAMI, globex))).toMatchObject({ status: 503, code: 'TENANT_FLAGS_UNAVAILABLE' });
    expect(await during(call(stack, '/api/v1/plain/x', { headers: globex }))).toMatchObject({
      status: 503,
      code: 'TENANT_FLAGS_UNAVAILABLE',
      body: { type: 'urn:gateway:error:tenant-flags-unavailable' },
    });
    for (const answer of answers) {
      expect(answer.status).not.toBe(500);
      expect(answer.ms).toBeLessThan(BOUNDED_MS);
    }
    const readiness = await ready(stack);
    expect(readiness.status).toBe(503);
    expect(readiness.body).toMatchObject({
      status: 'degraded',
      dependencies: { redis: { status: 'down', policies: { tenantFlags: 'closed', tokenFreshness: 'closed' } } },
    });

    await server.restart();
    await eventually(async () => expect((await ready(stack)).status).toBe(200));
    expect((await graphql(stack, WHOAMI, globex)).status).toBe(200);
    expect((await call(stack, '/api/v1/plain/x', { headers: globex })).status).toBe(200);
  });
});

describe('Redis outage with trusted documents (allow-list) in Redis', () => {
  let server: RedisServer;
  let admin: Redis;
  let stack: Stack;
  const SEEN = '{ products(first: 1) { upc } }';
  const UNSEEN = '{ products(first: 2) { upc } }';

  const fixture = outageFixture({ definitions: [catalogSubgraph()], env: { DEFAULT_TENANT_ID: 'acme', TRUSTED_DOCUMENTS: 'allow-list' } });
  beforeAll(async () => ({ server, admin, stack } = await fixture.start()));
  afterAll(() => fixture.stop());

  it('runs documents it has recently read, answers 503 for the others, and reads Redis again after a restart', async () => {
    const register = async () => {
      for (const text of [SEEN, UNSEEN]) await admin.set(`trusted-document:${sha256(text)}`, text);
    };
    await register();
    expect((await graphql(stack, { extensions: persisted(SEEN) })).body).toEqual({ data: { products: [{ upc: 'acme-anvil' }] } });

    await server.stop();
    const seen = await graphql(stack, { extensions: persisted(SEEN) });
    expect(seen).toMatchObject({ status: 200, body: { data: { products: [{ upc: 'acme-anvil' }] } } });
    const unseen = await graphql(stack, { extensions: persisted(UNSEEN) });
    expect(unseen).toMatchObject({ status: 503, code: 'TRUSTED_DOCUMENTS_UNAVAILABLE' });
    for (const answer of [seen, unseen]) expect(answer.ms).toBeLessThan(BOUNDED_MS);
    expect((await ready(stack)).body).toMatchObject({ status: 'degraded', dependencies: { redis: { policies: { trustedDocuments: 'last-known' } } } });

    await server.restart();
    await eventually(async () => expect((await ready(stack)).body).toMatchObject({ status: 'ready' }));
    expect((await graphql(stack, { extensions: persisted(UNSEEN) })).code).toBe('OPERATION_NOT_TRUSTED'); // Redis is empty again
    await register();
    expect((await graphql(stack, { extensions: persisted(UNSEEN) })).body).toEqual({ data: { products: [{ upc: 'acme-anvil' }, { upc: 'acme-skates' }] } });
  });
});

describe('last-known values', () => {
  it('stand in only for the configured time, and not at all when it is 0', () => {
    let clock = 1_000_000;
    const values = new LastKnown<string>(300_000, 10, () => clock);
    values.remember('a', 'A');
    clock += 300_000;
    expect(values.recall('a')).toBe('A');
    clock += 1;
    expect(values.recall('a')).toBeUndefined();
    values.remember('b', 'B');
    values.forget('b');
    expect(values.recall('b')).toBeUndefined();

    const never = new LastKnown<string>(0, 10, () => clock);
    never.remember('a', 'A');
    expect(never.recall('a')).toBeUndefined();
  });
});
