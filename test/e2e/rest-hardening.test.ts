import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { loadConfig } from '../../src/config/load.js';
import { serviceSchema } from '../../src/rest/config-schema.js';
import { eventually } from '../helpers/eventually.js';
import { TestIssuer } from '../helpers/issuer.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { rawRequest, startUpstream, type RawResponse, type Upstream } from '../helpers/upstream.js';

/**
 * The attack review of production instances, replayed against the real gateway and real upstreams:
 * each test is one finding, and fails on the gateway as it was reviewed.
 */

type Echo = { method: string; url: string; headers: Record<string, string | undefined> };
const echo = (response: RawResponse) => JSON.parse(response.body.toString()) as Echo;
const problem = (response: RawResponse) => JSON.parse(response.body.toString()) as { code: string; status: number; requestId: string };

function configFile(config: unknown): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-hardening-')), 'gateway.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

async function gatewayWith(config: unknown, env: Record<string, string> = {}): Promise<Stack> {
  return startStack({ definitions: [accountsSubgraph()], env: { NODE_ENV: 'production', GATEWAY_CONFIG: configFile(config), ...env } });
}

/** A client on a plain TCP socket: it writes exactly what the test says, when the test says it. */
class RawClient {
  text = '';
  closed = false;
  private constructor(private readonly socket: Socket) {}

  static async open(base: string): Promise<RawClient> {
    const { hostname, port } = new URL(base);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    const client = new RawClient(socket);
    socket.on('data', (chunk: Buffer) => (client.text += chunk.toString('latin1')));
    socket.on('close', () => (client.closed = true));
    socket.on('error', () => {});
    return client;
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data);
  }

  /** Writes `chunk` every `everyMs` until the connection closes: the slow client under test. */
  trickle(chunk: string, everyMs: number): void {
    const timer = setInterval(() => (this.closed ? clearInterval(timer) : this.write(chunk)), everyMs);
    this.socket.once('close', () => clearInterval(timer));
  }

  /** Status of the first final (non-1xx) response received, if any. */
  get status(): number | undefined {
    const statuses = [...this.text.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((match) => Number(match[1]));
    return statuses.find((status) => status >= 200);
  }

  /** Waits for a final response, or for the gateway to close the connection without one. */
  async outcome(): Promise<number | 'closed'> {
    return eventually(() => {
      const status = this.status;
      if (status === undefined && !this.closed) throw new Error('no answer yet');
      return status ?? 'closed';
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function requestHead(method: string, path: string, headers: Record<string, string | number>): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`;
}

/** node:http with `Expect: 100-continue`: the body is sent only once the gateway says 100 Continue. */
function expectContinueUpload(base: string, path: string, headers: Record<string, string>, body: Buffer) {
  const { hostname, port } = new URL(base);
  return new Promise<{ continued: boolean; response: RawResponse }>((resolve, reject) => {
    let continued = false;
    let answered = false;
    const req = httpRequest(
      { hostname, port, path, method: 'POST', agent: false, headers: { ...headers, expect: '100-continue', 'content-length': body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          answered = true;
          req.destroy();
          resolve({ continued, response: { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) } });
        });
      },
    );
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('error', (error) => answered || reject(error));
  });
}

describe('production instance: REST passthrough under attack', () => {
  let stack: Stack;
  const up: Record<string, Upstream> = {};
  let acme: string;
  let globex: string;
  const breaker = (service: string) => stack.gateway.rest.breakers.get(service)!;
  const firstInstance = (service: string) => stack.gateway.rest.pools.get(service)!.instances[0]!;

  beforeAll(async () => {
    for (const name of ['users', 'uploads', 'shared', 'echo']) up[name] = await startUpstream(name);
    const service = (name: string) => ({ upstreams: [{ url: up[name]!.url }] });
    stack = await gatewayWith({
      services: { users: service('users'), uploads: service('uploads'), shared: service('shared'), echo: service('echo') },
      routes: [
        { prefix: '/api/v1/users', service: 'users' },
        { prefix: '/api/v1/upload', service: 'uploads', bodyLimitBytes: 16 * 1024 * 1024 },
        { prefix: '/api/v1/shared', service: 'shared', rewritePrefix: '/api/v1/upload', bodyLimitBytes: 16 * 1024 * 1024 },
        { prefix: '/api/v1/echo', service: 'echo' },
        { prefix: '/api/v1/connection-nominated', service: 'echo', auth: 'public' },
      ],
    });
    acme = (await stack.bearer({ sub: 'u-acme-1', tenant_id: 'acme' })).authorization;
    globex = (await stack.bearer({ sub: 'u-globex-1', tenant_id: 'globex' })).authorization;
  });
  afterAll(async () => {
    await stack.close();
    await Promise.all(Object.values(up).map((u) => u.close()));
  });

  describe('finding 1: Expect: 100-continue', () => {
    it('GETs with Expect: 100-continue reach the service, and cannot open its breaker for other tenants', async () => {
      for (let i = 0; i < 5; i++) {
        const response = await rawRequest(stack.url, '/api/v1/users/me', { headers: { authorization: acme, expect: '100-continue' } });
        expect(response.status).toBe(200);
        expect(echo(response).headers.expect).toBeUndefined();
      }
      expect(breaker('users').state).toBe('closed');
      expect(firstInstance('users').consecutiveFailures).toBe(0);
      expect((await rawRequest(stack.url, '/api/v1/users/me', { headers: { authorization: globex } })).status).toBe(200);
    });

    it('an upload with Expect: 100-continue gets 100 Continue, streams, and reaches the service without the expect header', async () => {
      const body = Buffer.alloc(2 * 1024 * 1024, 9);
      const { continued, response } = await expectContinueUpload(
        stack.url,
        '/api/v1/upload',
        { authorization: acme, 'content-type': 'application/octet-stream' },
        body,
      );
      expect(continued).toBe(true);
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body.toString())).toEqual({ bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
      expect(up.uploads!.seen.at(-1)!.headers.expect).toBeUndefined();
    });

    it('/graphql answers 100 Continue too, once the request is admitted', async () => {
      const query = Buffer.from(JSON.stringify({ query: '{ __typename }' }));
      const { continued, response } = await expectContinueUpload(stack.url, '/graphql', { 'content-type': 'application/json' }, query);
      expect(continued).toBe(true);
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body.toString())).toEqual({ data: { __typename: 'Query' } });
    });

    it('a refused request is not invited to send its body: 401 without 100 Continue', async () => {
      const before = up.uploads!.hits;
      const { continued, response } = await expectContinueUpload(stack.url, '/api/v1/upload', {}, Buffer.alloc(4096));
      expect(response.status).toBe(401);
      expect(continued).toBe(false);
      expect(up.uploads!.hits).toBe(before);
    });
  });

  describe('finding 3: slow and abandoned uploads', () => {
    it('uploads the client abandons are not counted against the service (no breaker, no ejection)', async () => {
      for (let i = 0; i < 5; i++) {
        const client = await RawClient.open(stack.url);
        client.write(requestHead('POST', '/api/v1/upload', { host: 'gw.test', authorization: acme, 'content-length': 1_000_000 }));
        client.write(Buffer.alloc(64 * 1024, 1));
        await eventually(() => expect(up.uploads!.inFlight).toBe(1));
        client.destroy();
        await eventually(() => expect(up.uploads!.inFlight).toBe(0));
      }
      // One more exchange, so that anything still on its way from the aborts has been handled.
      expect((await rawRequest(stack.url, '/api/v1/upload/after', { headers: { authorization: globex } })).status).toBe(200);
      expect(breaker('uploads').state).toBe('closed');
      expect(firstInstance('uploads').consecutiveFailures).toBe(0);
    });

    it("one caller's 130 trickling uploads cannot take every upstream connection: another tenant is still served", async () => {
      const perCaller = serviceSchema.parse({ upstreams: [{ url: up.shared!.url }] }).maxConnectionsPerCaller;
      const clients: RawClient[] = [];
      try {
        for (let i = 0; i < 130; i++) {
          const client = await RawClient.open(stack.url);
          client.write(requestHead('POST', '/api/v1/shared', { host: 'gw.test', authorization: acme, 'content-length': 1_000_000 }));
          client.trickle('x', 1_000);
          clients.push(client);
        }
        // Every upload is either held by the service or was refused: none waits in a queue.
        await eventually(() => expect(up.shared!.inFlight + clients.filter((c) => c.status === 429).length).toBe(130));
        expect(up.shared!.inFlight).toBeLessThanOrEqual(perCaller);
        const refused = clients.find((c) => c.status === 429)!;
        expect(refused.text).toContain('TOO_MANY_CONCURRENT_REQUESTS');

        const other = await rawRequest(stack.url, '/api/v1/shared/status', { headers: { authorization: globex } });
        expect(other.status).toBe(200);
      } finally {
        clients.forEach((c) => c.destroy());
      }
      await eventually(() => expect(up.shared!.inFlight).toBe(0));
      expect(breaker('shared').state).toBe('closed');
    });
  });

  describe('finding 6: Host and the forwarding headers', () => {
    const host = () => new URL(stack.url).host;

    it('refuses a Host that would inject a second Forwarded element (400 INVALID_HOST)', async () => {
      const before = up.echo!.hits;
      const response = await rawRequest(stack.url, '/api/v1/echo/x', {
        headers: { authorization: acme, host: 'a", for=6.6.6.6;proto=https;host="trusted.example' },
      });
      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(problem(response)).toMatchObject({ code: 'INVALID_HOST', status: 400, requestId: response.headers['x-request-id'] });
      expect(up.echo!.hits).toBe(before);
    });

    for (const bad of ['a b', 'a"b', 'a\\b', 'a/b', 'user@host', 'host:port', 'host:123456', '[::1', '[::1]x', 'a,b;c=d"']) {
      it(`refuses Host ${JSON.stringify(bad)}`, async () => {
        const response = await rawRequest(stack.url, '/api/v1/echo/x', { headers: { authorization: acme, host: bad } });
        expect(response.status).toBe(400);
        expect(problem(response).code).toBe('INVALID_HOST');
      });
    }

    for (const good of ['api.example.com:8443', '[::1]:4000', '127.0.0.1', 'under_score.example', 'xn--bcher-kva.example']) {
      it(`forwards Host ${good} quoted in Forwarded and as X-Forwarded-Host`, async () => {
        const response = await rawRequest(stack.url, '/api/v1/echo/x', { headers: { authorization: acme, host: good } });
        expect(response.status).toBe(200);
        const { headers } = echo(response);
        expect(headers['x-forwarded-host']).toBe(good);
        expect(headers.forwarded).toBe(`for=127.0.0.1;proto=http;host="${good}"`);
      });
    }

    it("an untrusted client's own forwarding headers never reach the service", async () => {
      const response = await rawRequest(stack.url, '/api/v1/echo/x', {
        headers: {
          authorization: acme,
          'x-forwarded-host': 'evil.example',
          'x-forwarded-proto': 'https',
          'x-forwarded-port': '443',
          'x-forwarded-prefix': '/admin',
          forwarded: 'for=6.6.6.6;host=evil.example',
        },
      });
      const { headers } = echo(response);
      expect(headers['x-forwarded-host']).toBe(host());
      expect(headers['x-forwarded-proto']).toBe('http');
      expect(headers['x-forwarded-port']).toBeUndefined();
      expect(headers['x-forwarded-prefix']).toBeUndefined();
      expect(headers.forwarded).toBe(`for=127.0.0.1;proto=http;host="${host()}"`);
    });
  });

  describe('finding 7: headers that must not pass', () => {
    it('client-claimed IP headers are replaced by the gateway view (X-Real-IP) or dropped', async () => {
      const response = await rawRequest(stack.url, '/api/v1/echo/x', {
        headers: {
          authorization: acme,
          'x-real-ip': '6.6.6.6',
          'true-client-ip': '6.6.6.6',
          'x-client-ip': '6.6.6.6',
          'cf-connecting-ip': '6.6.6.6',
          'x-cluster-client-ip': '6.6.6.6',
        },
      });
      const { headers } = echo(response);
      expect(headers['x-real-ip']).toBe('127.0.0.1');
      expect(headers['true-client-ip']).toBeUndefined();
      expect(headers['x-client-ip']).toBeUndefined();
      expect(headers['cf-connecting-ip']).toBeUndefined();
      expect(headers['x-cluster-client-ip']).toBeUndefined();
    });

    it('method override headers are dropped: a read-only tenant GET stays a GET upstream', async () => {
      const readOnly = (await stack.bearer({ sub: 'u-acme-2', tenant_id: 'acme', read_only: true })).authorization;
      const response = await rawRequest(stack.url, '/api/v1/echo/x', {
        headers: { authorization: readOnly, 'x-http-method-override': 'DELETE', 'x-method-override': 'DELETE', 'x-http-method': 'DELETE' },
      });
      expect(response.status).toBe(200);
      const seen = echo(response);
      expect(seen.method).toBe('GET');
      expect(seen.headers['x-http-method-override']).toBeUndefined();
      expect(seen.headers['x-method-override']).toBeUndefined();
      expect(seen.headers['x-http-method']).toBeUndefined();
    });

    it('headers the upstream names in Connection stay on that hop (RFC 9110 §7.6.1)', async () => {
      const response = await rawRequest(stack.url, '/api/v1/connection-nominated');
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('nominated');
      expect(response.headers['x-secret-internal']).toBeUndefined();
      expect(response.headers['x-instance']).toBe('echo');
    });
  });
});

describe('finding 3: request timeouts (REQUEST_TIMEOUT_MS=2000, REQUEST_BODY_TIMEOUT_MS=500)', () => {
  let stack: Stack;
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await startUpstream('slowbody');
    stack = await gatewayWith(
      {
        services: { slowbody: { upstreams: [{ url: upstream.url }] } },
        routes: [{ prefix: '/api/v1/upload', service: 'slowbody', auth: 'public' }],
      },
      { REQUEST_TIMEOUT_MS: '2000', REQUEST_BODY_TIMEOUT_MS: '500' },
    );
  });
  afterAll(async () => {
    await stack.close();
    await upstream.close();
  });

  it('a body that stops arriving gets 408 REQUEST_TIMEOUT, and the upstream is not blamed', async () => {
    const client = await RawClient.open(stack.url);
    client.write(requestHead('POST', '/api/v1/upload', { host: 'gw.test', 'content-length': 1_000_000 }));
    client.write(Buffer.alloc(1024, 1));
    try {
      expect(await client.outcome()).toBe(408);
      expect(client.text).toContain('REQUEST_TIMEOUT');
      expect(client.text.toLowerCase()).toContain('connection: close');
    } finally {
      client.destroy();
    }
    await eventually(() => expect(upstream.inFlight).toBe(0));
    expect(stack.gateway.rest.breakers.get('slowbody')!.state).toBe('closed');
    expect(stack.gateway.rest.pools.get('slowbody')!.instances[0]!.consecutiveFailures).toBe(0);
  });

  it('a body trickled fast enough to never be idle is still cut at the request timeout (408 or closed)', async () => {
    const client = await RawClient.open(stack.url);
    client.write(requestHead('POST', '/api/v1/upload', { host: 'gw.test', 'content-length': 1_000_000 }));
    client.trickle('x', 100);
    try {
      const outcome = await client.outcome();
      expect([408, 'closed']).toContain(outcome);
    } finally {
      client.destroy();
    }
    await eventually(() => expect(upstream.inFlight).toBe(0));
    expect(stack.gateway.rest.breakers.get('slowbody')!.state).toBe('closed');
  });

  it('headers trickled past the request timeout get 408 (slowloris)', async () => {
    const client = await RawClient.open(stack.url);
    client.write('GET /api/v1/upload/x HTTP/1.1\r\nHost: gw.test\r\n');
    client.trickle('x-pad: y\r\n', 100);
    try {
      expect(await client.outcome()).toBe(408);
      expect(client.text).toContain('REQUEST_TIMEOUT');
    } finally {
      client.destroy();
    }
  });

  it('a /graphql body trickled past the request timeout gets 408', async () => {
    const client = await RawClient.open(stack.url);
    client.write(requestHead('POST', '/graphql', { host: 'gw.test', 'content-type': 'application/json', 'content-length': 100_000 }));
    client.write('{"query":"');
    client.trickle(' ', 100);
    try {
      expect(await client.outcome()).toBe(408);
    } finally {
      client.destroy();
    }
  });
});

describe('finding 3: connection bounds per caller, tenant and instance', () => {
  let stack: Stack;
  let upstream: Upstream;
  const held: RawClient[] = [];
  const token = async (sub: string, tenant: string) => (await stack.bearer({ sub, tenant_id: tenant })).authorization;

  beforeAll(async () => {
    upstream = await startUpstream('capped');
    stack = await gatewayWith({
      services: {
        capped: { upstreams: [{ url: upstream.url }], maxConnections: 3, maxConnectionsPerCaller: 1, maxConnectionsPerTenant: 2 },
      },
      routes: [{ prefix: '/api/v1/capped', service: 'capped', rewritePrefix: '/api/v1/upload' }],
    });
  });
  afterAll(async () => {
    held.forEach((c) => c.destroy());
    await stack.close();
    await upstream.close();
  });

  /** An upload that the service is holding open (its body is still to come). */
  async function hold(authorization: string): Promise<RawClient> {
    const before = upstream.inFlight;
    const client = await RawClient.open(stack.url);
    client.write(requestHead('POST', '/api/v1/capped', { host: 'gw.test', authorization, 'content-length': 1_000_000 }));
    client.write('x');
    held.push(client);
    await eventually(() => expect(upstream.inFlight).toBe(before + 1));
    return client;
  }

  it('refuses a caller over its share (429), a tenant over its share (429), and a full instance (503) without queueing', async () => {
    const first = await hold(await token('u-acme-1', 'acme'));
    const again = await rawRequest(stack.url, '/api/v1/capped/x', { headers: { authorization: await token('u-acme-1', 'acme') } });
    expect(again.status).toBe(429);
    expect(problem(again).code).toBe('TOO_MANY_CONCURRENT_REQUESTS');
    expect(again.headers['retry-after']).toBeDefined();

    await hold(await token('u-acme-2', 'acme'));
    const tenantFull = await rawRequest(stack.url, '/api/v1/capped/x', { headers: { authorization: await token('u-acme-3', 'acme') } });
    expect(tenantFull.status).toBe(429);
    expect(problem(tenantFull).code).toBe('TOO_MANY_CONCURRENT_REQUESTS');

    await hold(await token('u-globex-1', 'globex'));
    const busy = await rawRequest(stack.url, '/api/v1/capped/x', { headers: { authorization: await token('u-initech-1', 'initech') } });
    expect(busy.status).toBe(503);
    expect(problem(busy).code).toBe('UPSTREAM_BUSY');
    expect(busy.headers['retry-after']).toBeDefined();
    expect(stack.gateway.rest.breakers.get('capped')!.state).toBe('closed');

    first.destroy();
    await eventually(async () => {
      const served = await rawRequest(stack.url, '/api/v1/capped/x', { headers: { authorization: await token('u-initech-1', 'initech') } });
      expect(served.status).toBe(200);
    });
  });

  it('refuses, at start-up, limits that would let one tenant take every connection', () => {
    const load = (service: Record<string, unknown>) =>
      loadConfig({ GATEWAY_CONFIG: configFile({ services: { s: { upstreams: [{ url: 'http://127.0.0.1:1' }], ...service } } }) });
    expect(() => load({ maxConnections: 4, maxConnectionsPerTenant: 4 })).toThrow(/services\.s\.maxConnectionsPerTenant/);
    expect(() => load({ maxConnectionsPerCaller: 10, maxConnectionsPerTenant: 5 })).toThrow(/services\.s\.maxConnectionsPerCaller/);
    expect(load({}).services.s).toMatchObject({ maxConnections: 128, maxConnectionsPerCaller: 32, maxConnectionsPerTenant: 64 });
  });
});

describe('review 2, item 1: clients that leave while auth is pending hold nothing', () => {
  let stack: Stack;
  let upstream: Upstream;
  let jwksServer: ReturnType<typeof createServer>;
  /** JWKS requests the identity provider is holding (it answers when the test says). */
  const pending: ServerResponse[] = [];
  let issuer: TestIssuer;

  beforeAll(async () => {
    issuer = await TestIssuer.create();
    jwksServer = createServer((_req, res) => pending.push(res));
    jwksServer.listen(0, '127.0.0.1');
    await once(jwksServer, 'listening');
    const { port } = jwksServer.address() as { port: number };
    upstream = await startUpstream('capped');
    stack = await startStack({
      definitions: [accountsSubgraph()],
      issuer,
      env: {
        NODE_ENV: 'production',
        JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
        GATEWAY_CONFIG: configFile({
          services: { capped: { upstreams: [{ url: upstream.url }], maxConnections: 4, maxConnectionsPerCaller: 1, maxConnectionsPerTenant: 2 } },
          routes: [{ prefix: '/api/v1/capped', service: 'capped', rewritePrefix: '/api/v1/users' }],
        }),
      },
    });
  });
  afterAll(async () => {
    await stack.close();
    await upstream.close();
    jwksServer.closeAllConnections();
    jwksServer.close();
  });

  it('after more aborts than the per-caller cap, during a slow JWKS fetch, the caller is still served', async () => {
    const clients: RawClient[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await RawClient.open(stack.url);
      const authorization = `Bearer ${await issuer.mint({ sub: 'u-acme-1', jti: `abort-${i}` })}`;
      client.write(requestHead('GET', '/api/v1/capped/1', { host: 'gw.test', authorization }));
      clients.push(client);
    }
    // The gateway is waiting for the identity provider; the clients give up.
    await eventually(() => expect(pending.length).toBeGreaterThan(0));
    await new Promise((resolve) => setTimeout(resolve, 100));
    clients.forEach((client) => client.destroy());
    await new Promise((resolve) => setTimeout(resolve, 100));
    const jwks = JSON.stringify(await issuer.jwks());
    for (const res of pending.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(upstream.hits).toBe(0);
    const served = await rawRequest(stack.url, '/api/v1/capped/1', { headers: { authorization: (await stack.bearer({ sub: 'u-acme-1' })).authorization } });
    expect(served.status).toBe(200);
    expect(stack.gateway.rest.breakers.get('capped')!.state).toBe('closed');
    expect(stack.gateway.rest.pools.get('capped')!.instances[0]!.active).toBe(0);
  });
});

describe('review 2, item 2: an upstream body that fails before its first byte', () => {
  let stack: Stack;
  let service: ReturnType<typeof createServer>;
  const REPRESENTATION = {
    'content-type': 'application/octet-stream',
    'content-length': '100',
    'content-encoding': 'gzip',
    'content-disposition': 'attachment; filename="report.bin"',
    etag: '"v7"',
    'cache-control': 'public, max-age=3600',
  };

  beforeAll(async () => {
    // Sends its headers at once, then resets (/reset) or never sends the body (/stall).
    service = createServer((req, res) => {
      res.writeHead(200, REPRESENTATION);
      res.flushHeaders();
      if (req.url?.startsWith('/files/reset')) setTimeout(() => req.socket.destroy(), 20);
    });
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
    const { port } = service.address() as { port: number };
    stack = await gatewayWith({
      services: {
        files: { upstreams: [{ url: `http://127.0.0.1:${port}` }], timeoutMs: 300, retries: 0, circuitBreaker: { failureThreshold: 2 } },
      },
      routes: [{ prefix: '/api/v1/files', service: 'files', rewritePrefix: '/files', auth: 'public' }],
    });
  });
  afterAll(async () => {
    await stack.close();
    service.closeAllConnections();
    service.close();
  });

  it('answers 502/504 problem+json without the upstream headers, and counts against the service', async () => {
    const reset = await rawRequest(stack.url, '/api/v1/files/reset');
    expect(reset.status).toBe(502);
    expect(problem(reset).code).toBe('UPSTREAM_UNAVAILABLE');
    const stalled = await rawRequest(stack.url, '/api/v1/files/stall');
    expect(stalled.status).toBe(504);
    expect(problem(stalled).code).toBe('UPSTREAM_TIMEOUT');
    for (const response of [reset, stalled]) {
      expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
      for (const name of ['content-encoding', 'content-disposition', 'etag', 'cache-control']) expect(response.headers[name]).toBeUndefined();
      expect(response.headers['x-content-type-options']).toBe('nosniff');
    }
    expect(stack.gateway.rest.breakers.get('files')!.state).toBe('open');
  });
});

describe('finding 8: TRUST_PROXY, one parser with Fastify semantics', () => {
  // The test client connects from 127.0.0.1 and claims to come through 10.1.2.3 from 6.6.6.6.
  const claimed = { 'x-forwarded-for': '6.6.6.6, 10.1.2.3', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example' };
  type Expected = { xff: string; realIp: string; forwarded: (host: string) => string; proto: string; host?: string };
  const direct: Expected = { xff: '127.0.0.1', realIp: '127.0.0.1', proto: 'http', forwarded: (h) => `for=127.0.0.1;proto=http;host="${h}"` };
  const wholeChain: Expected = {
    xff: '6.6.6.6, 10.1.2.3, 127.0.0.1',
    realIp: '6.6.6.6',
    proto: 'https',
    host: 'public.example',
    forwarded: () => 'for=6.6.6.6;proto=https;host="public.example", for=10.1.2.3, for=127.0.0.1',
  };
  const matrix: [string, string | undefined, Expected][] = [
    ['unset', undefined, direct],
    ['false', 'false', direct],
    ['true (every peer)', 'true', wholeChain],
    [
      'address list, peer trusted, next hop not',
      '127.0.0.1, ::1',
      {
        xff: '10.1.2.3, 127.0.0.1',
        realIp: '10.1.2.3',
        proto: 'https',
        host: 'public.example',
        forwarded: () => 'for=10.1.2.3;proto=https;host="public.example", for=127.0.0.1',
      },
    ],
    ['CIDR list covering the whole chain', '127.0.0.0/8,10.0.0.0/8', wholeChain],
    ['CIDR, peer not trusted', '10.0.0.0/8', direct],
  ];

  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await startUpstream('trust');
  });
  afterAll(async () => upstream.close());

  for (const [label, value, expected] of matrix) {
    it(`${label}: what the upstream receives`, async () => {
      const stack = await gatewayWith(
        { services: { trust: { upstreams: [{ url: upstream.url }] } }, routes: [{ prefix: '/api/v1/trust', service: 'trust', auth: 'public' }] },
        // `true` is refused in production (any client would pick its own address): shown in development.
        value === undefined ? {} : { TRUST_PROXY: value, ...(value === 'true' ? { NODE_ENV: 'development' } : {}) },
      );
      try {
        const response = await rawRequest(stack.url, '/api/v1/trust/x', { headers: claimed });
        expect(response.status).toBe(200);
        const { headers } = echo(response);
        const host = expected.host ?? new URL(stack.url).host;
        expect(headers['x-forwarded-for']).toBe(expected.xff);
        expect(headers['x-real-ip']).toBe(expected.realIp);
        expect(headers['x-forwarded-proto']).toBe(expected.proto);
        expect(headers['x-forwarded-host']).toBe(host);
        expect(headers.forwarded).toBe(expected.forwarded(host));
      } finally {
        await stack.close();
      }
    });
  }

  it('a trusted proxy cannot inject through X-Forwarded-Host either', async () => {
    const stack = await gatewayWith(
      { services: { trust: { upstreams: [{ url: upstream.url }] } }, routes: [{ prefix: '/api/v1/trust', service: 'trust', auth: 'public' }] },
      { TRUST_PROXY: '127.0.0.1' },
    );
    try {
      const response = await rawRequest(stack.url, '/api/v1/trust/x', { headers: { 'x-forwarded-host': 'a", for=6.6.6.6;host="trusted.example' } });
      expect(response.status).toBe(400);
      expect(problem(response).code).toBe('INVALID_HOST');
    } finally {
      await stack.close();
    }
  });

  it('refuses hop counts and malformed entries at start-up, naming the field', () => {
    const load = (value: string) => () => loadConfig({ TRUST_PROXY: value });
    for (const value of ['1', '2', 'proxy.internal', '10.0.0.0/33', '300.1.1.1', 'true,10.0.0.1']) {
      expect(load(value), value).toThrow(/trustProxy \(env TRUST_PROXY\)/);
    }
    // A YAML number is a hop count too, and gets the same explanation.
    expect(() => loadConfig({ GATEWAY_CONFIG: configFile({ trustProxy: 2 }) })).toThrow(/trustProxy \(env TRUST_PROXY\): "2": hop counts are not supported/);
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.1, 192.168.0.0/16,::1' }).trustProxy).toEqual(['10.0.0.1', '192.168.0.0/16', '::1']);
  });
});
