import { Writable } from 'node:stream';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { catalogSubgraph } from '../../subgraphs/catalog/index.js';
import { inventorySubgraph } from '../../subgraphs/inventory/index.js';
import { postGraphQL, startStack, type Stack } from '../helpers/stack.js';

const METRICS_TOKEN = 'scrape-secret-0123456789';
const lines: Record<string, unknown>[] = [];
const logStream = new Writable({
  write(chunk, _encoding, done) {
    for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    definitions: [catalogSubgraph(), inventorySubgraph()],
    logger: { level: 'info', stream: logStream },
    env: { METRICS_TOKEN, DEFAULT_TENANT_ID: 'acme' },
  });
});
afterAll(() => stack.close());

async function scrape() {
  const response = await fetch(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
  const text = await response.text();
  return Object.assign(parsePrometheusTextFormat(text), { text });
}

/** The parser keeps histogram buckets but not their labels, so counts are read from `_count` lines. */
function histogramCount(text: string, name: string, labels: Record<string, string>): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}_count{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.split(' ').pop()) : 0;
}

function sample(families: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string>): number {
  const family = families.find((f) => f.name === name);
  const match = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return Number(match?.value ?? match?.count ?? 0);
}

describe('/metrics', () => {
  it('is protected by METRICS_TOKEN', async () => {
    expect((await fetch(`${stack.url}/metrics`)).status).toBe(401);
  });

  it('parses as Prometheus text and its counters move with traffic', async () => {
    const before = await scrape();
    const auth = await stack.bearer({ sub: 'u-acme-2' });
    await postGraphQL(stack.url, { query: 'query Products { products { name inStock } }' }, auth);
    await postGraphQL(stack.url, { query: 'query Products { products { name inStock } }' }, auth);
    await postGraphQL(stack.url, { query: '{ products { upc } }' });
    await fetch(`${stack.url}/api/v1/orders/12345`);
    const after = await scrape();

    const graphql200 = { method: 'POST', route: '/graphql', status: '200' };
    expect(sample(after, 'gateway_requests_total', graphql200) - sample(before, 'gateway_requests_total', graphql200)).toBe(3);
    expect(sample(after, 'gateway_graphql_operations_total', { operation_name: 'Products', operation_type: 'query', result: 'success' })).toBe(2);
    expect(sample(after, 'gateway_graphql_operations_total', { operation_name: 'anonymous', operation_type: 'query', result: 'success' })).toBeGreaterThanOrEqual(1);
    expect(histogramCount(after.text, 'gateway_subgraph_request_duration_seconds', { subgraph: 'inventory' })).toBeGreaterThanOrEqual(2);
    expect(sample(after, 'gateway_auth_attempts_total', { result: 'jwt' })).toBeGreaterThanOrEqual(2);
    expect(histogramCount(after.text, 'gateway_request_duration_seconds', { method: 'POST', route: '/graphql' })).toBeGreaterThanOrEqual(3);
    expect(sample(after, 'gateway_requests_total', { route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(after.find((f) => f.name === 'gateway_supergraph_info')?.metrics[0]?.labels?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(after.find((f) => f.name === 'process_cpu_user_seconds_total')).toBeDefined();
  });

  it('never uses raw paths as labels', async () => {
    await fetch(`${stack.url}/api/v1/orders/98765`);
    const text = await (await fetch(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(text).not.toContain('98765');
  });
});

describe('request logs', () => {
  it('one line per request with id, route, status, duration, tenant, user and subgraph timings; never the token', async () => {
    const auth = await stack.bearer({ sub: 'u-acme-1' });
    const token = auth.authorization.split(' ')[1]!;
    const { headers } = await postGraphQL(stack.url, { query: '{ products(first: 1) { name inStock } }' }, auth);
    const requestId = headers.get('x-request-id');
    const mine = lines.filter((line) => line.reqId === requestId);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ msg: 'request completed', method: 'POST', route: '/graphql', status: 200, tenant: 'acme', userId: 'u-acme-1' });
    expect(mine[0]!.durationMs).toBeGreaterThan(0);
    expect((mine[0]!.subgraphs as { subgraph: string }[]).map((s) => s.subgraph).sort()).toEqual(['catalog', 'inventory']);
    expect(JSON.stringify(lines)).not.toContain(token);
  });
});

describe('/health/services', () => {
  it('reports every subgraph (and REST service, Redis) in the seeds\' shape, cached', async () => {
    const response = await fetch(`${stack.url}/health/services`);
    expect(response.status).toBe(200);
    const report = (await response.json()) as { status: string; version: string; timestamp: string; services: Record<string, string> };
    expect(report).toMatchObject({ status: 'healthy', version: '0.1.0', services: { 'subgraph:catalog': 'healthy', 'subgraph:inventory': 'healthy' } });

    await stack.subgraphs.inventory!.close();
    const cached = (await (await fetch(`${stack.url}/health/services`)).json()) as { timestamp: string };
    expect(cached.timestamp).toBe(report.timestamp); // within 30 s the services are not asked again
  });

  it('reports a service that went down as unhealthy, with 503 (no cache here)', async () => {
    const uncached = await startStack({ definitions: [catalogSubgraph(), inventorySubgraph()], env: { HEALTH_SERVICES_CACHE_SECONDS: '0' } });
    try {
      expect((await fetch(`${uncached.url}/health/services`)).status).toBe(200);
      await uncached.subgraphs.inventory!.close();
      const response = await fetch(`${uncached.url}/health/services`);
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({
        status: 'degraded',
        services: { 'subgraph:catalog': 'healthy', 'subgraph:inventory': 'unhealthy' },
      });
    } finally {
      await uncached.close();
    }
  });
});

describe('/docs', () => {
  it('describes the gateway endpoints and routes in OpenAPI 3, browsable without a CDN', async () => {
    const spec = (await (await fetch(`${stack.url}/docs/json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toMatch(/^3\./);
    for (const path of ['/health', '/health/ready', '/health/services', '/metrics', '/graphql', '/api/v1/alerts/stream', '/.well-known/jwks.json']) {
      expect(Object.keys(spec.paths), path).toContain(path);
    }
    const page = await fetch(`${stack.url}/docs/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('swagger-ui');
    expect(html).not.toMatch(/src="https?:\/\//);
    const script = /src="\.?\/?([^"]*swagger-ui-bundle\.js)"/.exec(html)?.[1];
    expect(script).toBeTruthy();
    const bundle = await fetch(`${stack.url}/docs/${script!.replace(/^docs\//, '')}`);
    expect(bundle.status).toBe(200);
    // Read it all: the browser needs the whole bundle (and an unread body would hold the connection).
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
  });
});

describe('operational routes in production: behind auth, policy and rate limits', () => {
  let production: Stack;
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(`${production.url}${path}`, { method, headers });
  /** Every surface that shows upstreams, breaker state, operation names or the route table. */
  const PROTECTED = ['/metrics', '/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/swagger-ui-bundle.js', '/docs/static/index.css', '/health/services'];

  beforeAll(async () => {
    production = await startStack({
      definitions: [catalogSubgraph()],
      env: {
        NODE_ENV: 'production',
        METRICS_TOKEN,
        DEFAULT_TENANT_ID: 'acme',
        RATE_LIMIT_ENABLED: 'true',
        RATE_LIMIT_REQUESTS: '20',
        RATE_LIMIT_WINDOW_SECONDS: '3600',
      },
    });
  });
  afterAll(() => production.close());

  it('refuses anonymous callers with 401 problem+json, for the UI, its description and its assets alike', async () => {
    for (const path of PROTECTED) {
      const response = await get(path);
      expect(response.status, path).toBe(401);
      expect(response.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
      expect(response.headers.get('www-authenticate'), path).toBe('Bearer realm="gateway"');
      expect(await response.json(), path).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
    }
    expect((await get('/metrics', {}, 'HEAD')).status).toBe(401);
  });

  it('liveness, readiness and the JWKS stay open (and are not rate limited)', async () => {
    for (const path of ['/health', '/health/ready', '/.well-known/jwks.json']) {
      const response = await get(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('ratelimit'), path).toBeNull();
      await response.body?.cancel();
    }
  });

  it('/docs and /health/services answer any authenticated caller, rate limited', async () => {
    const auth = await production.bearer({ sub: 'u-acme-docs' });
    for (const path of ['/docs/', '/docs/json', '/docs/static/swagger-ui-bundle.js', '/health/services']) {
      const response = await get(path, auth);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('ratelimit'), path).toMatch(/^"/);
      await response.text();
    }
  });

  it('/metrics needs the metrics:read permission or METRICS_TOKEN', async () => {
    const plain = await get('/metrics', await production.bearer({ sub: 'u-acme-plain', permissions: ['read:orders'] }));
    expect(plain.status).toBe(403);
    expect(plain.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await plain.json()).toMatchObject({ code: 'FORBIDDEN', status: 403 });

    const permitted = await get('/metrics', await production.bearer({ sub: 'u-acme-ops', permissions: ['metrics:read'] }));
    expect(permitted.status).toBe(200);
    expect(await permitted.text()).toContain('gateway_requests_total');

    const scraper = await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(scraper.status).toBe(200);
    expect(scraper.headers.get('ratelimit')).toMatch(/^"/);
    await scraper.text();

    const guess = await get('/metrics', { authorization: `Bearer ${METRICS_TOKEN.slice(0, -1)}x` });
    expect(guess.status).toBe(401);
    expect(await guess.json()).toMatchObject({ code: 'INVALID_TOKEN' });
  });

  it('a caller over its limit gets 429 there too', async () => {
    const auth = await production.bearer({ sub: 'u-acme-burst' });
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) {
      const response = await get('/health/services', auth);
      statuses.push(response.status);
      await response.text();
    }
    expect(statuses.slice(0, 20).every((status) => status === 200)).toBe(true);
    expect(statuses[20]).toBe(429);
  });
});

describe('operational routes: per-route settings', () => {
  it('DOCS_AUTH / HEALTH_SERVICES_AUTH / METRICS_AUTH and their permissions override the production defaults', async () => {
    const stack = await startStack({
      definitions: [catalogSubgraph()],
      env: { NODE_ENV: 'production', METRICS_AUTH: 'public', HEALTH_SERVICES_AUTH: 'public', DOCS_PERMISSIONS: 'docs:read' },
    });
    try {
      expect((await fetch(`${stack.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${stack.url}/health/services`)).status).toBe(200);
      expect((await fetch(`${stack.url}/docs/json`)).status).toBe(401);
      expect((await fetch(`${stack.url}/docs/json`, { headers: await stack.bearer() })).status).toBe(403);
      expect((await fetch(`${stack.url}/docs/json`, { headers: await stack.bearer({ permissions: ['docs:read'] }) })).status).toBe(200);
    } finally {
      await stack.close();
    }
  });

  it('a public /metrics with a METRICS_TOKEN set is a configuration error', () => {
    expect(() => loadConfig({ METRICS_AUTH: 'public', METRICS_TOKEN })).toThrow(/metricsAuth \(env METRICS_AUTH\)/);
  });
});
