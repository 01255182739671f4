import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { eventually } from '../helpers/eventually.js';
import { TestIssuer } from '../helpers/issuer.js';
import { openEventStream } from '../helpers/sse.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { sharedRedisUrl } from '../helpers/shared-redis.js';

const REDIS_URL = sharedRedisUrl(10);

const listen = (url: string, headers: Record<string, string>, lastEventId?: string) =>
  openEventStream(url, { ...headers, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) });

let issuer: TestIssuer;
let first: Stack;
let second: Stack;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  await redis.flushdb();
  issuer = await TestIssuer.create();
  const env = { REDIS_URL };
  first = await startStack({ issuer, definitions: [accountsSubgraph()], env });
  second = await startStack({ issuer, definitions: [accountsSubgraph()], env });
});
afterAll(async () => {
  await first.close();
  await second.close();
  await redis.flushdb();
  redis.disconnect();
});

const xadd = (tenant: string, type: string, data: unknown) => redis.xadd(`alerts:tenant:${tenant}`, '*', 'type', type, 'data', JSON.stringify(data));

describe('tenant event streams (SSE)', () => {
  it('refuses unauthenticated clients', async () => {
    const response = await fetch(`${first.url}/api/v1/alerts/stream`);
    expect(response.status).toBe(401);
  });

  it('delivers a tenant its own events only, published with XADD or the POST endpoint', async () => {
    const acme = listen(first.url, await first.bearer({ tenant_id: 'acme' }));
    const globex = listen(first.url, await first.bearer({ sub: 'u-globex-1', tenant_id: 'globex' }));
    await Promise.all([acme.opened, globex.opened]);
    await xadd('acme', 'alert', { message: 'oven temperature high' });
    await xadd('globex', 'alert', { message: 'for globex only' });
    const publish = await fetch(`${first.url}/api/v1/alerts`, {
      method: 'POST',
      headers: { ...(await first.bearer({ tenant_id: 'acme', roles: ['publisher'] })), 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'notice', data: { message: 'restocked' } }),
    });
    expect(publish.status).toBe(201);
    await eventually(() => expect(acme.received).toHaveLength(2));
    expect(acme.received.map((e) => e.data)).toEqual([{ message: 'oven temperature high' }, { message: 'restocked' }]);
    expect(acme.received[0]!.id).toMatch(/^\d+-\d+$/);
    await eventually(() => expect(globex.received).toHaveLength(1));
    expect(globex.received[0]!.data).toEqual({ message: 'for globex only' });
    acme.source.close();
    globex.source.close();
  });

  it('publishing is role-gated', async () => {
    const response = await fetch(`${first.url}/api/v1/alerts`, {
      method: 'POST',
      headers: { ...(await first.bearer({ roles: ['viewer'] })), 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'notice', data: {} }),
    });
    expect(response.status).toBe(403);
  });

  it('reconnecting with Last-Event-ID replays exactly the missed events, in order, then continues live', async () => {
    const auth = await first.bearer({ tenant_id: 'initech', sub: 'u-init-1' });
    const client = listen(first.url, auth);
    await client.opened;
    await xadd('initech', 'alert', { n: 0 });
    await eventually(() => expect(client.received).toHaveLength(1));
    client.source.close();
    for (const n of [1, 2, 3]) await xadd('initech', 'alert', { n });

    const again = listen(second.url, auth, client.received[0]!.id);
    await again.opened;
    await eventually(() => expect(again.received).toHaveLength(3));
    await xadd('initech', 'alert', { n: 4 });
    await eventually(() => expect(again.received).toHaveLength(4));
    expect(again.received.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    again.source.close();
  });

  it('two gateway instances on one Redis: each subscriber gets each event exactly once', async () => {
    const clients = await Promise.all(
      [first, first, second, second].map(async (stack) => listen(stack.url, await stack.bearer({ tenant_id: 'umbrella', sub: 'u-umb' }))),
    );
    await Promise.all(clients.map((c) => c.opened));
    for (const n of [1, 2, 3, 4, 5]) await xadd('umbrella', 'alert', { n });
    for (const client of clients) await eventually(() => expect(client.received).toHaveLength(5));
    await new Promise((resolve) => setTimeout(resolve, 300)); // no late duplicates either
    for (const client of clients) {
      expect(client.received.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
      client.source.close();
    }
  });

  it('browsers use a short-lived ticket instead of a token in the URL', async () => {
    const ticketResponse = await fetch(`${first.url}/api/v1/streams/ticket`, { method: 'POST', headers: await first.bearer({ tenant_id: 'acme' }) });
    const { ticket } = (await ticketResponse.json()) as { ticket: string };
    const stream = await fetch(`${first.url}/api/v1/alerts/stream?ticket=${ticket}`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await stream.body?.cancel();
    expect((await fetch(`${first.url}/api/v1/alerts/stream?ticket=forged.ticket.value`)).status).toBe(401);
    // A ticket is not a bearer token anywhere else.
    expect((await fetch(`${first.url}/api/v1/streams/ticket`, { method: 'POST', headers: { authorization: `Bearer ${ticket}` } })).status).toBe(401);
  });
});

describe('stream limits', () => {
  it('refuses connections beyond the per-tenant limit with 429', async () => {
    const limited = await startStack({
      issuer,
      definitions: [accountsSubgraph()],
      env: { GATEWAY_CONFIG: writeSseConfig({ maxConnectionsPerTenant: 1 }) },
    });
    try {
      const auth = await limited.bearer({ tenant_id: 'acme' });
      const firstStream = await fetch(`${limited.url}/api/v1/alerts/stream`, { headers: auth });
      expect(firstStream.status).toBe(200);
      const secondStream = await fetch(`${limited.url}/api/v1/alerts/stream`, { headers: auth });
      expect(secondStream.status).toBe(429);
      expect(((await secondStream.json()) as { code: string }).code).toBe('TOO_MANY_STREAMS');
      await firstStream.body?.cancel();
    } finally {
      await limited.close();
    }
  });
});

describe('slow consumers', () => {
  it('a client that stops reading is disconnected instead of growing the gateway memory', async () => {
    const stack = await startStack({ issuer, definitions: [accountsSubgraph()], env: { GATEWAY_CONFIG: writeSseConfig({ maxBufferedBytes: 16_384 }) } });
    try {
      const { authorization } = await stack.bearer({ tenant_id: 'acme' });
      const { port } = new URL(stack.url);
      const socket = connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      socket.write(`GET /api/v1/alerts/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n\r\n`);
      await once(socket, 'data'); // the response head and the retry hint
      socket.pause(); // …and never read again
      // Another client of the same tenant keeps reading: it must not wait for the stalled one.
      const reader = listen(stack.url, await stack.bearer({ sub: 'u-reader', tenant_id: 'acme' }));
      await reader.opened;
      const dropped = async () => (await stack.gateway.metrics.sseEventsDropped.get()).values[0]?.value ?? 0;
      const payload = JSON.stringify({ blob: 'x'.repeat(8_192) });
      let published = 0;
      for (let i = 0; i < 4_000 && (await dropped()) === 0; i++) {
        await stack.gateway.events.publish('alerts', 'acme', 'alert', payload);
        published++;
        // A turn of the event loop per event lets the reading client read (it shares this process).
        await new Promise((resolve) => setImmediate(resolve));
        if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      // The gateway gave up on the client (instead of queueing ~32 MB for it) and let the connection go.
      expect(await dropped()).toBeGreaterThanOrEqual(1);
      await eventually(async () => expect((await stack.gateway.metrics.sseConnections.get()).values[0]?.value).toBe(1));
      // …while the reading client got every event, in order.
      await eventually(() => expect(reader.received).toHaveLength(published));
      expect(new Set(reader.received.map((event) => event.id)).size).toBe(published);
      reader.source.close();
      await eventually(async () => expect((await stack.gateway.metrics.sseConnections.get()).values[0]?.value).toBe(0));
      socket.destroy();
    } finally {
      await stack.close();
    }
  });
  it('a stalled client on a quiet tenant is dropped by the next heartbeat once it is over the cap, and its slot is freed', async () => {
    const stack = await startStack({
      issuer,
      definitions: [accountsSubgraph()],
      env: { GATEWAY_CONFIG: writeSseConfig({ maxBufferedBytes: 65_536, heartbeatSeconds: 0.05, maxConnectionsPerUser: 1 }) },
    });
    try {
      const auth = await stack.bearer({ sub: 'u-stalled', tenant_id: 'quiet' });
      const { port } = new URL(stack.url);
      const socket = connect(Number(port), '127.0.0.1');
      await once(socket, 'connect');
      socket.write(`GET /api/v1/alerts/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${auth.authorization}\r\n\r\n`);
      await once(socket, 'data'); // the response head and the retry hint
      socket.pause(); // …and never read again
      const connections = async () => (await stack.gateway.metrics.sseConnections.get()).values[0]?.value;
      expect(await connections()).toBe(1);
      // One event larger than the socket buffers can hold: its write is allowed (nothing was queued
      // before it) and leaves the client far over the cap. Then the tenant goes quiet: heartbeats only.
      await stack.gateway.events.publish('alerts', 'quiet', 'alert', JSON.stringify({ blob: 'x'.repeat(8 << 20) }));
      await eventually(async () => expect(await connections()).toBe(0));
      expect((await stack.gateway.metrics.sseEventsDropped.get()).values[0]?.value).toBe(1);
      // The caller's only slot was given back.
      const again = listen(stack.url, auth);
      await again.opened;
      again.source.close();
      socket.destroy();
    } finally {
      await stack.close();
    }
  });
});

describe('the stream response', () => {
  it("carries the pipeline's headers, is not chunked, and ends cleanly at shutdown with its own log line", async () => {
    const lines: { msg?: string; tenant?: string; durationMs?: number }[] = [];
    const logStream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const stack = await startStack({ issuer, definitions: [accountsSubgraph()], logger: { level: 'info', stream: logStream }, env: { RATE_LIMIT_ENABLED: 'true' } });
    let closed = false;
    try {
      const { authorization } = await stack.bearer({ tenant_id: 'acme-head' });
      const { port } = new URL(stack.url);
      // HEAD: the stream's head, no stream (and no slot held).
      const head = await fetch(`${stack.url}/api/v1/alerts/stream`, { method: 'HEAD', headers: { authorization } });
      expect(head.status).toBe(200);
      // The same content headers as the stream itself (one constant for both).
      expect(head.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(head.headers.get('cache-control')).toBe('no-cache, no-transform');
      expect(head.headers.get('x-accel-buffering')).toBe('no');
      expect((await stack.gateway.metrics.sseConnections.get()).values[0]?.value ?? 0).toBe(0);

      const socket = connect(Number(port), '127.0.0.1');
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      const ended = once(socket, 'end');
      socket.write(`GET /api/v1/alerts/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\nX-Request-Id: sse-head-1\r\n\r\n`);
      await eventually(() => expect(text).toContain('retry:'));
      const [status, ...headerLines] = text.slice(0, text.indexOf('\r\n\r\n')).split('\r\n');
      const headers = new Map(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      expect(status).toBe('HTTP/1.1 200 OK');
      expect(headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(headers.get('cache-control')).toBe('no-cache, no-transform');
      expect(headers.get('x-accel-buffering')).toBe('no');
      // Security headers, the request id and the rate-limit fields the pipeline set, each once.
      expect(headers.get('x-content-type-options')).toBe('nosniff');
      expect(headers.get('strict-transport-security')).toBeDefined();
      expect(headers.get('x-request-id')).toBe('sse-head-1');
      expect(headers.get('ratelimit-policy')).toBeDefined();
      expect(headerLines.filter((line) => /^x-request-id:/i.test(line))).toHaveLength(1);
      expect(headers.get('date')).toBeDefined();
      // The body is delimited by the connection: no chunk sizes between the frames.
      expect(headers.has('transfer-encoding')).toBe(false);
      expect(headers.get('connection')).toBe('close');
      await stack.gateway.events.publish('alerts', 'acme-head', 'alert', '{"n":1}');
      await eventually(() => expect(text).toMatch(/\r\n\r\nretry: \d+\n\nid: \d+-\d+\nevent: alert\ndata: \{"n":1\}\n\n$/));

      await stack.close();
      closed = true;
      await ended; // a clean end of the body, not a reset
      await eventually(() => expect(lines.find((line) => line.msg === 'event stream closed')).toMatchObject({ tenant: 'acme-head' }));
    } finally {
      if (!closed) await stack.close();
    }
  });
});

describe('heartbeats', () => {
  it('every open stream gets comment heartbeats, whenever it opened', async () => {
    const stack = await startStack({ issuer, definitions: [accountsSubgraph()], env: { GATEWAY_CONFIG: writeSseConfig({ heartbeatSeconds: 0.2 }) } });
    try {
      const { authorization } = await stack.bearer({ tenant_id: 'acme' });
      const { port } = new URL(stack.url);
      const open = async () => {
        const socket = connect(Number(port), '127.0.0.1');
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
        socket.write(`GET /api/v1/alerts/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n\r\n`);
        await eventually(() => expect(text).toContain('retry:'));
        return { socket, heartbeats: () => text.split(': heartbeat\n\n').length - 1 };
      };
      const early = await open();
      await new Promise((resolve) => setTimeout(resolve, 130));
      const late = await open();
      await eventually(() => {
        expect(early.heartbeats()).toBeGreaterThanOrEqual(3);
        expect(late.heartbeats()).toBeGreaterThanOrEqual(3);
      });
      early.socket.destroy();
      late.socket.destroy();
    } finally {
      await stack.close();
    }
  });
});

function writeSseConfig(sse: Record<string, unknown>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'gw-sse-')), 'gateway.json');
  writeFileSync(file, JSON.stringify({ sse }));
  return file;
}
