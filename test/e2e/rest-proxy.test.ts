import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer as createHttpServer, get as httpGet, type ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { rawRequest, startUpstream, type RawResponse, type Upstream } from '../helpers/upstream.js';

let stack: Stack;
const up: Record<string, Upstream> = {};
/** The gateway's view of one instance of a service (health as its checks last saw it). */
const instance = (service: string, url: string) => stack.gateway.rest.pools.get(service)!.instances.find((i) => i.url === url)!;
let token: string;
const METRICS_TOKEN = 'rest-scrape-secret-0123456789';
/** The gateway's log lines, parsed. */
const logLines: Record<string, unknown>[] = [];
const logStream = new Writable({
  write(chunk, _encoding, done) {
    for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A service streaming LARGE_BYTES of a known pattern, honouring backpressure, and noting how far it
 * got and whether its response closed before it finished.
 */
const LARGE_BYTES = 48 * 1024 * 1024;
const large = { written: 0, finished: false, cutShort: false, url: '' };
/** Ends the trickling response the service holds open (see /trickle below). */
let releaseTrickle: (() => void) | null = null;
const largeServer = createHttpServer((request, response: ServerResponse) => {
  if (request.url?.startsWith('/api/v1/large/trickle')) {
    // The first bytes now, the rest only when the test says so.
    const length = request.url.endsWith('/sized') ? { 'content-length': 10 } : {};
    response.writeHead(200, { 'content-type': 'text/plain', ...length });
    response.write('first');
    releaseTrickle = () => response.end('rest!');
    return;
  }
  Object.assign(large, { written: 0, finished: false, cutShort: false });
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LARGE_BYTES });
  response.once('close', () => (large.cutShort = !response.writableFinished));
  const chunk = Buffer.alloc(64 * 1024, 7);
  const pump = () => {
    while (large.written < LARGE_BYTES) {
      large.written += chunk.length;
      if (!response.write(chunk)) return void response.once('drain', pump);
    }
    response.end(() => (large.finished = true));
  };
  pump();
});

/** A service that answers with something that is not HTTP. */
const garbledServer = createServer((socket) => socket.once('data', () => socket.end('NOT HTTP AT ALL\r\n\r\n')));

beforeAll(async () => {
  garbledServer.listen(0, '127.0.0.1');
  await once(garbledServer, 'listening');
  const garbledUrl = `http://127.0.0.1:${(garbledServer.address() as { port: number }).port}`;
  largeServer.listen(0, '127.0.0.1');
  await once(largeServer, 'listening');
  large.url = `http://127.0.0.1:${(largeServer.address() as { port: number }).port}`;
  for (const name of ['legacy', 'v2', 'slow', 'flaky', 'pairA', 'pairB', 'postA', 'postB', 'w1', 'w2', 'c1', 'c2']) {
    up[name] = await startUpstream(name);
  }
  up.slow!.setMode('slow');
  up.pairA!.setMode('reset');
  up.postA!.setMode('reset');
  const service = (names: string[], extra: Record<string, unknown> = {}) => ({
    upstreams: names.map((n) => ({ url: up[n]!.url })),
    ...extra,
  });
  const config = {
    services: {
      legacy: service(['legacy']),
      v2: service(['v2']),
      slow: service(['slow'], { timeoutMs: 300, retries: 0 }),
      down: { upstreams: [{ url: `http://127.0.0.1:${await closedPort()}` }] },
      flaky: service(['flaky'], { retries: 0, circuitBreaker: { failureThreshold: 3, windowMs: 10_000, resetTimeoutMs: 500 } }),
      pair: service(['pairA', 'pairB'], { healthCheck: { failureThreshold: 2, ejectMs: 60_000 } }),
      posting: service(['postA', 'postB']),
      weighted: {
        upstreams: [
          { url: up.w1!.url, weight: 3 },
          { url: up.w2!.url, weight: 1 },
        ],
        loadBalancing: 'weighted',
      },
      checked: service(['c1', 'c2'], { healthCheck: { path: '/health', intervalMs: 100, timeoutMs: 500 } }),
      large: { upstreams: [{ url: large.url }] },
      garbled: { upstreams: [{ url: garbledUrl }], retries: 0, circuitBreaker: { failureThreshold: 2, windowMs: 10_000, resetTimeoutMs: 60_000 } },
    },
    routes: [
      { prefix: '/api/v1/echo', service: 'legacy' },
      ...['status', 'files', 'cookies', 'redirect', 'spoofing'].map((p) => ({ prefix: `/api/v1/${p}`, service: 'legacy', auth: 'public' })),
      { prefix: '/api/v1/upload', service: 'legacy', auth: 'public', bodyLimitBytes: 200 * 1024 * 1024 },
      { prefix: '/api/v1/small', service: 'legacy', auth: 'public', rewritePrefix: '/api/v1/upload', bodyLimitBytes: 1024 },
      { prefix: '/api/v1/readonly', service: 'legacy', auth: 'public', methods: ['GET', 'HEAD'] },
      { prefix: '/api/v2/echo', service: 'v2', auth: 'public' },
      { prefix: '/api/v1/slow', service: 'slow', auth: 'public' },
      { prefix: '/api/v1/down', service: 'down', auth: 'public' },
      { prefix: '/api/v1/flaky', service: 'flaky', auth: 'public' },
      { prefix: '/api/v1/pair', service: 'pair', auth: 'public' },
      { prefix: '/api/v1/posting', service: 'posting', auth: 'public' },
      { prefix: '/api/v1/weighted', service: 'weighted', auth: 'public' },
      { prefix: '/api/v1/checked', service: 'checked', auth: 'public' },
      { prefix: '/api/v1/large', service: 'large', auth: 'public' },
      { prefix: '/api/v1/garbled', service: 'garbled', auth: 'public' },
    ],
  };
  const file = join(mkdtempSync(join(tmpdir(), 'gw-rest-')), 'gateway.yaml');
  writeFileSync(file, stringify(config));
  stack = await startStack({
    definitions: [accountsSubgraph()],
    env: { GATEWAY_CONFIG: file, CORS_ORIGINS: 'https://app.example.com', CORS_CREDENTIALS: 'true', METRICS_TOKEN },
    logger: { level: 'info', stream: logStream },
  });
  token = (await stack.bearer({ roles: ['admin'] })).authorization;
});
afterAll(async () => {
  await stack.close();
  await Promise.all(Object.values(up).map((u) => u.close()));
  largeServer.closeAllConnections();
  largeServer.close();
  garbledServer.close();
});

/** Response headers the gateway adds or owns; everything else must be what the upstream sent. */
const GATEWAY_HEADERS = new Set([
  'date',
  'connection',
  'keep-alive',
  'x-request-id',
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
  // With CORS configured, responses vary by Origin (cache correctness).
  'vary',
  'ratelimit',
  'ratelimit-policy',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
]);

/**
 * Status, headers and body bytes as the upstream meant them. Message framing is per connection
 * (RFC 9112): an empty body may come chunked from one hop and with `Content-Length: 0` from the next.
 */
function upstreamPart(response: RawResponse) {
  const emptyBody = response.body.length === 0;
  const headers = Object.fromEntries(
    Object.entries(response.headers).filter(
      ([name]) => !GATEWAY_HEADERS.has(name) && name !== 'transfer-encoding' && !(emptyBody && name === 'content-length'),
    ),
  );
  return { status: response.status, headers, body: response.body.toString('base64') };
}

describe('unchanged traffic: the same request straight to the upstream and through the gateway', () => {
  const cases: [string, string, string?][] = [
    ['GET', '/api/v1/status/200'],
    ['GET', '/api/v1/status/204'],
    ['GET', '/api/v1/status/304'],
    ['GET', '/api/v1/status/404'],
    ['GET', '/api/v1/status/500'],
    ['HEAD', '/api/v1/status/200'],
    ['GET', '/api/v1/files/binary'],
    ['HEAD', '/api/v1/files/binary'],
    ['GET', '/api/v1/files/chunked'],
    ['GET', '/api/v1/cookies'],
    ['GET', '/api/v1/redirect'],
    ['POST', '/api/v1/status/201', 'payload'],
    ['PUT', '/api/v1/status/200', 'payload'],
    ['PATCH', '/api/v1/status/200', 'payload'],
    ['DELETE', '/api/v1/status/204'],
    ['OPTIONS', '/api/v1/status/200'],
  ];
  for (const [method, path, body] of cases) {
    it(`${method} ${path}`, async () => {
      const direct = await rawRequest(up.legacy!.url, path, { method, body });
      const through = await rawRequest(stack.url, path, { method, body });
      expect(upstreamPart(through)).toEqual(upstreamPart(direct));
      expect(through.headers['x-request-id']).toBeTruthy();
    });
  }

  it('multiple Set-Cookie headers arrive as separate headers', async () => {
    const through = await rawRequest(stack.url, '/api/v1/cookies');
    expect(through.headers['set-cookie']).toEqual(['a=1; Path=/; HttpOnly', 'b=2; Path=/; Secure']);
  });

  it('redirects are passed through, not followed', async () => {
    const through = await rawRequest(stack.url, '/api/v1/redirect');
    expect(through.status).toBe(302);
    expect(through.headers.location).toBe('/api/v1/echo/target?from=redirect');
  });

  it('chunked responses stay streamed (no Content-Length invented)', async () => {
    const through = await rawRequest(stack.url, '/api/v1/files/chunked');
    expect(through.headers['transfer-encoding']).toBe('chunked');
    expect(through.body.toString()).toBe('chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n');
  });
});

describe('large responses and slow clients', () => {
  for (const framing of ['chunked', 'sized']) {
    it(`a ${framing} body is relayed as it arrives: the client has the first bytes while the upstream still holds the rest`, async () => {
      releaseTrickle = null;
      const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
        httpGet(`${stack.url}/api/v1/large/trickle/${framing}`, { agent: false }, resolve).on('error', reject),
      );
      expect(response.statusCode).toBe(200);
      const first = await Promise.race([
        once(response, 'data').then(([chunk]) => String(chunk)),
        new Promise((resolve) => setTimeout(() => resolve('nothing within 5 s'), 5_000)),
      ]);
      expect(first).toBe('first');
      expect(releaseTrickle).not.toBeNull();
      let rest = '';
      response.on('data', (chunk: Buffer) => (rest += String(chunk)));
      releaseTrickle!();
      await once(response, 'end');
      expect(rest).toBe('rest!');
    });
  }

  it('a client that stops reading holds the upstream back (no buffering in the gateway), then gets every byte', async () => {
    const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
      httpGet(`${stack.url}/api/v1/large/file`, { agent: false }, resolve).on('error', reject),
    );
    expect(response.statusCode).toBe(200);
    response.pause();
    // Socket buffers on three hops take some megabytes; the rest must wait for the client.
    await eventually(() => expect(large.written).toBeGreaterThan(0));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(large.finished).toBe(false);
    expect(large.written).toBeLessThan(LARGE_BYTES / 2);
    let received = 0;
    let wrong = 0;
    response.on('data', (chunk: Buffer) => {
      received += chunk.length;
      for (const byte of chunk) if (byte !== 7) wrong++;
    });
    response.resume();
    await once(response, 'end');
    expect(received).toBe(LARGE_BYTES);
    expect(wrong).toBe(0);
  });

  it('a client that leaves mid-body cuts the upstream response short (its connection is not drained for nobody)', async () => {
    const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
      httpGet(`${stack.url}/api/v1/large/file`, { agent: false }, resolve).on('error', reject),
    );
    await once(response, 'data');
    response.destroy();
    await eventually(() => expect(large.cutShort).toBe(true));
    expect(large.finished).toBe(false);
  });
});

describe('every proxied response is logged and counted once', () => {
  const scrape = async () =>
    (await fetch(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  const value = (text: string, prefix: string) => Number(text.split('\n').find((line) => line.startsWith(prefix))?.split(' ').pop() ?? 0);

  it('small, streamed, bodiless and HEAD responses: one request line each, and the request and size series move', async () => {
    const before = await scrape();
    const cases: [string, string, number][] = [
      ['GET', '/api/v1/status/200', 200],
      ['GET', '/api/v1/files/chunked', 200],
      ['GET', '/api/v1/files/binary', 200],
      ['GET', '/api/v1/status/204', 204],
      ['HEAD', '/api/v1/status/200', 200],
    ];
    for (const [method, path, status] of cases) {
      const response = await rawRequest(stack.url, path, { method });
      expect(response.status).toBe(status);
      const id = response.headers['x-request-id'];
      await eventually(() => expect(logLines.filter((line) => line.reqId === id && line.msg === 'request completed')).toHaveLength(1));
      expect(logLines.find((line) => line.reqId === id && line.msg === 'request completed')).toMatchObject({ method, path, status });
    }
    const after = await scrape();
    const series = (route: string, status: string, method = 'GET') => `gateway_requests_total{method="${method}",route="${route}",status="${status}"}`;
    expect(value(after, series('/api/v1/status/*', '200')) - value(before, series('/api/v1/status/*', '200'))).toBe(1);
    expect(value(after, series('/api/v1/status/*', '204')) - value(before, series('/api/v1/status/*', '204'))).toBe(1);
    expect(value(after, series('/api/v1/status/*', '200', 'HEAD')) - value(before, series('/api/v1/status/*', '200', 'HEAD'))).toBe(1);
    expect(value(after, series('/api/v1/files/*', '200')) - value(before, series('/api/v1/files/*', '200'))).toBe(2);
    // Sizes come from Content-Length: the binary file and the HEAD's announced length; the chunked one has none.
    const sizes = 'gateway_response_size_bytes_count{route="/api/v1/files/*"}';
    expect(value(after, sizes) - value(before, sizes)).toBe(1);
  });
});

describe("the gateway's response fields win over the upstream's", () => {
  it('security headers, request id and CORS stay the gateway’s; Vary lists both', async () => {
    const direct = await rawRequest(up.legacy!.url, '/api/v1/spoofing');
    expect(direct.headers['x-frame-options']).toBe('ALLOWALL');
    // The gateway's own values, from a response whose upstream says nothing about them.
    const plain = await rawRequest(stack.url, '/api/v1/status/200', { headers: { origin: 'https://app.example.com' } });
    const through = await rawRequest(stack.url, '/api/v1/spoofing', { headers: { origin: 'https://app.example.com' } });
    expect(through.status).toBe(200);
    expect(through.body.toString()).toBe('spoofing');
    for (const name of ['x-frame-options', 'x-content-type-options', 'strict-transport-security', 'referrer-policy', 'cross-origin-resource-policy']) {
      expect(plain.headers[name], name).toBeTruthy();
      expect(through.headers[name], name).toBe(plain.headers[name]);
    }
    expect(through.headers['x-request-id']).toMatch(/^[\w-]+$/);
    expect(through.headers['x-request-id']).not.toContain('chosen-by-the-upstream');
    expect(through.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(through.headers.vary!.split(/\s*,\s*/).sort()).toEqual(['Accept-Encoding', 'Origin']);
    // Fields the gateway does not own still pass unchanged.
    expect(through.headers['x-instance']).toBe('legacy');
    expect(through.headers['content-type']).toBe('text/plain');
  });
});

describe('what reaches the upstream', () => {
  type Echo = { method: string; url: string; headers: Record<string, string>; body: string };
  const echo = (response: RawResponse) => JSON.parse(response.body.toString()) as Echo;

  it('keeps method, raw path, encoded query and repeated keys, and the exact body bytes', async () => {
    const path = '/api/v1/echo/a%20b/c?x=1&x=2&q=caf%C3%A9&sp=a+b&enc=%2F%3F';
    const body = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    const response = await rawRequest(stack.url, path, {
      method: 'PATCH',
      headers: { authorization: token, 'content-type': 'application/octet-stream' },
      body,
    });
    expect(response.status).toBe(200);
    const seen = echo(response);
    expect(seen.method).toBe('PATCH');
    expect(seen.url).toBe(path);
    expect(Buffer.from(seen.body, 'base64')).toEqual(body);
  });

  it('adds forwarding, trace and identity headers; strips client identity and hop-by-hop headers', async () => {
    const response = await rawRequest(stack.url, '/api/v1/echo/headers', {
      headers: {
        authorization: token,
        'x-user-id': 'mallory',
        'x-user-roles': 'superadmin',
        'x-gateway-context': 'forged',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': 'hop',
        'keep-alive': 'timeout=5',
        'x-custom': 'kept',
        x_user_id: 'mallory-underscore',
        'x-forwarded-for': '6.6.6.6',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
    });
    const { headers } = echo(response);
    expect(headers['x-user-id']).toBe('u-acme-1');
    expect(headers['x-tenant-id']).toBe('acme');
    expect(headers['x-user-roles']).toBe('admin');
    expect(headers['x-gateway-context']).toMatch(/^eyJ/);
    expect(headers['x-request-id']).toBe(response.headers['x-request-id']);
    expect(headers.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(headers['x-forwarded-for']).toBe('127.0.0.1'); // the client's own claim is not trusted
    expect(headers['x_user_id']).toBeUndefined();
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-host']).toBe(new URL(stack.url).host);
    expect(headers.forwarded).toBe(`for=127.0.0.1;proto=http;host="${new URL(stack.url).host}"`);
    expect(headers['x-custom']).toBe('kept');
    expect(headers['x-drop-me']).toBeUndefined();
    expect(headers['keep-alive']).toBeUndefined();
  });

  it('the route policy applies: no token, no call', async () => {
    const before = up.legacy!.hits;
    const response = await rawRequest(stack.url, '/api/v1/echo/private');
    expect(response.status).toBe(401);
    expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(up.legacy!.hits).toBe(before);
  });

  it('rewrites the prefix when configured, and routes /api/v2 to its own service', async () => {
    const small = await rawRequest(stack.url, '/api/v1/small', { method: 'POST', body: 'tiny' });
    expect(JSON.parse(small.body.toString())).toEqual({ bytes: 4, sha256: createHash('sha256').update('tiny').digest('hex') });
    const v2 = await rawRequest(stack.url, '/api/v2/echo/x');
    expect(echo(v2)).toMatchObject({ url: '/api/v2/echo/x' });
    expect(v2.headers['x-instance']).toBe('v2');
  });

  it('streams a 100 MB upload with flat memory', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const expected = createHash('sha256');
    async function* upload() {
      for (let i = 0; i < 100; i++) {
        expected.update(chunk);
        yield chunk;
      }
    }
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const response = await rawRequest(stack.url, '/api/v1/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      body: upload(),
    });
    clearInterval(sampler);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString())).toEqual({ bytes: 100 * 1024 * 1024, sha256: expected.digest('hex') });
    // Client, gateway and upstream share this process: buffering the body anywhere would add ≥100 MB.
    expect(peak - before).toBeLessThan(60 * 1024 * 1024);
  });
});

describe('safety', () => {
  const attempts = [
    '/api/v1/echo/../../admin',
    '/api/v1/echo/%2e%2e/%2e%2e/admin',
    '/api/v1/echo/%2E%2E/admin',
    '/api/v1/echo/..%2fadmin',
    '/api/v1/echo%2f..%2fadmin',
    '/api/v1/echo//admin',
    '/api/v1/echo/..\\admin',
    '/api/v1/echo/%5c..%5cadmin',
    '/api/v1/echo/%00',
    '/api/v1/echo/%zz',
    '/api/v1/echo/%252e%252e/admin',
    '/api/v1/echo/..;/admin',
    '/api/v1/ech%6f/x',
  ];
  for (const path of attempts) {
    it(`refuses ${path}`, async () => {
      const before = up.legacy!.hits;
      const response = await rawRequest(stack.url, path, { headers: { authorization: token } });
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body.toString())).toMatchObject({ code: 'PATH_NOT_ALLOWED' });
      // A refusal is a response like any other: helmet's headers too.
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(up.legacy!.hits).toBe(before);
    });
  }

  it('unknown /api/v1 prefixes get 404 problem+json, never a default upstream', async () => {
    const response = await rawRequest(stack.url, '/api/v1/nothing-here/x');
    expect(response.status).toBe(404);
    expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
  });

  it('a method the route does not allow is refused', async () => {
    const response = await rawRequest(stack.url, '/api/v1/readonly/x', { method: 'DELETE' });
    expect(response.status).toBe(404);
  });

  it('a body over the route limit gets 413, declared or chunked', async () => {
    const before = up.legacy!.hits;
    const declared = await rawRequest(stack.url, '/api/v1/small', { method: 'POST', body: Buffer.alloc(4096) });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body.toString())).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(up.legacy!.hits).toBe(before);

    async function* chunks() {
      for (let i = 0; i < 8; i++) yield Buffer.alloc(512);
    }
    const chunked = await rawRequest(stack.url, '/api/v1/small', { method: 'POST', headers: { 'transfer-encoding': 'chunked' }, body: chunks() });
    expect(chunked.status).toBe(413);
  });

  it('CORS: the gateway answers preflights itself (before auth) for configured origins only', async () => {
    const before = up.legacy!.hits;
    const preflight = await rawRequest(stack.url, '/api/v1/echo/x', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(preflight.headers['access-control-allow-credentials']).toBe('true');
    expect(up.legacy!.hits).toBe(before);

    const simple = await rawRequest(stack.url, '/api/v1/status/200', { headers: { origin: 'https://app.example.com' } });
    expect(simple.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(simple.headers['access-control-expose-headers']).toContain('x-request-id');
    const stranger = await rawRequest(stack.url, '/api/v1/status/200', { headers: { origin: 'https://evil.example' } });
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('security headers are set on gateway responses', async () => {
    const response = await rawRequest(stack.url, '/api/v1/status/200');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
  });
});

describe('resilience', () => {
  it('upstream down → 502 problem+json with the request id', async () => {
    const response = await rawRequest(stack.url, '/api/v1/down/x');
    expect(response.status).toBe(502);
    const problem = JSON.parse(response.body.toString());
    expect(problem).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 502, requestId: response.headers['x-request-id'] });
  });

  it('upstream slow → 504 within the timeout', async () => {
    const started = Date.now();
    const response = await rawRequest(stack.url, '/api/v1/slow/x');
    expect(response.status).toBe(504);
    expect(JSON.parse(response.body.toString())).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('retries a GET on the other instance; never retries a POST', async () => {
    const before = up.pairB!.hits;
    const get = await rawRequest(stack.url, '/api/v1/pair/x');
    expect(get.status).toBe(200);
    expect(get.headers['x-instance']).toBe('pairB');
    expect(up.pairA!.hits).toBeGreaterThanOrEqual(1);
    expect(up.pairB!.hits).toBe(before + 1);

    const postBBefore = up.postB!.hits;
    const post = await rawRequest(stack.url, '/api/v1/posting/x', { method: 'POST', body: 'once' });
    expect(post.status).toBe(502);
    expect(up.postA!.hits).toBe(1);
    expect(up.postB!.hits).toBe(postBBefore);
  });

  it('ejects an instance after consecutive failures', async () => {
    await rawRequest(stack.url, '/api/v1/pair/x');
    await rawRequest(stack.url, '/api/v1/pair/x');
    const aHits = up.pairA!.hits;
    for (let i = 0; i < 6; i++) expect((await rawRequest(stack.url, '/api/v1/pair/x')).headers['x-instance']).toBe('pairB');
    expect(up.pairA!.hits).toBe(aHits);
    const pool = stack.gateway.rest.pools.get('pair')!;
    expect(pool.isAvailable(pool.instances[0]!)).toBe(false);
  });

  it('opens the circuit after repeated failures, answers 503 fast, half-opens and recovers', async () => {
    up.flaky!.setMode('fail-500');
    for (let i = 0; i < 3; i++) {
      const failed = await rawRequest(stack.url, '/api/v1/flaky/x');
      expect(failed.status).toBe(500); // the upstream's own answer, unchanged
    }
    const hits = up.flaky!.hits;
    const open = await rawRequest(stack.url, '/api/v1/flaky/x');
    expect(open.status).toBe(503);
    expect(open.headers['retry-after']).toBe('1');
    expect(JSON.parse(open.body.toString())).toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(up.flaky!.hits).toBe(hits);
    expect(stack.gateway.rest.breakers.get('flaky')!.state).toBe('open');

    up.flaky!.setMode('ok');
    await eventually(() => expect(stack.gateway.rest.breakers.get('flaky')!.state).toBe('half-open'));
    expect((await rawRequest(stack.url, '/api/v1/flaky/x')).status).toBe(200);
    expect(stack.gateway.rest.breakers.get('flaky')!.state).toBe('closed');
    expect((await rawRequest(stack.url, '/api/v1/flaky/x')).status).toBe(200);
  });

  it('an upstream that does not speak HTTP gets 502 and counts against the service (its breaker opens)', async () => {
    for (let i = 0; i < 2; i++) {
      const failed = await rawRequest(stack.url, '/api/v1/garbled/x');
      expect(failed.status).toBe(502);
      expect(JSON.parse(failed.body.toString())).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    }
    expect(stack.gateway.rest.breakers.get('garbled')!.state).toBe('open');
    const open = await rawRequest(stack.url, '/api/v1/garbled/x');
    expect(open.status).toBe(503);
    expect(JSON.parse(open.body.toString())).toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it('weighted balancing splits traffic 3:1 (tolerance ±2%)', async () => {
    const counts = { w1: 0, w2: 0 };
    for (let i = 0; i < 200; i++) {
      const response = await rawRequest(stack.url, '/api/v1/weighted/x');
      counts[response.headers['x-instance'] as 'w1' | 'w2']++;
    }
    expect(Math.abs(counts.w1 / 200 - 0.75)).toBeLessThanOrEqual(0.02);
  });

  it('active health checks skip an unhealthy instance and readmit it when it recovers', async () => {
    up.c1!.setMode('unhealthy');
    await eventually(() => expect(instance('checked', up.c1!.url).activeHealthy).toBe(false));
    const c1Before = up.c1!.hits;
    for (let i = 0; i < 6; i++) expect((await rawRequest(stack.url, '/api/v1/checked/x')).headers['x-instance']).toBe('c2');
    expect(up.c1!.hits).toBe(c1Before);

    up.c1!.setMode('ok');
    await eventually(() => expect(instance('checked', up.c1!.url).activeHealthy).toBe(true));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add(String((await rawRequest(stack.url, '/api/v1/checked/x')).headers['x-instance']));
    expect(seen).toEqual(new Set(['c1', 'c2']));
  });

  it('all instances down → 503', async () => {
    up.c1!.setMode('unhealthy');
    up.c2!.setMode('unhealthy');
    await eventually(() => expect(stack.gateway.rest.pools.get('checked')!.instances.every((i) => !i.activeHealthy)).toBe(true));
    const response = await rawRequest(stack.url, '/api/v1/checked/x');
    expect(response.status).toBe(503);
    expect(JSON.parse(response.body.toString())).toMatchObject({ code: 'NO_HEALTHY_UPSTREAM' });
  });
});
