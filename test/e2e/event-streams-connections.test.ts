import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Redis, type Command } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { RedisServer } from '../helpers/redis-server.js';
import { attemptEventStream, openEventStream } from '../helpers/sse.js';
import { eventStreamSuite } from '../helpers/event-stream-suite.js';
import type { Stack } from '../helpers/stack.js';

// Event streams on real connections: pipelining, bytes after the request, clients gone early, an
// unreachable bus, and what a stream leaves in metrics and traces when it ends.

const suite = eventStreamSuite();
const stack = suite.stack;

/** A raw connection to the gateway, collecting everything it answers. */
function rawConnection(target: Stack): { socket: Socket; text: () => string; closed: Promise<unknown> } {
  const socket = connect(Number(new URL(target.url).port), '127.0.0.1');
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  socket.on('error', () => {});
  return { socket, text: () => text, closed: once(socket, 'close') };
}

const streamRequest = (authorization: string) => `GET /api/v1/alerts/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n\r\n`;
const openStreams = async (target: Stack) => (await target.gateway.metrics.sseConnections.get()).values[0]?.value ?? 0;

describe('a stream request pipelined behind another on one connection', () => {
  it('is refused without taking a slot: the caller can still open its full share afterwards', async () => {
    const gateway = await stack({ sse: { maxConnectionsPerUser: 3 } });
    const auth = await gateway.bearer({ sub: 'u-pipeliner', tenant_id: 'acme-pipe' });
    for (let i = 0; i < 3; i++) {
      const connection = rawConnection(gateway);
      await once(connection.socket, 'connect');
      connection.socket.write(streamRequest(auth.authorization) + streamRequest(auth.authorization));
      await eventually(() => expect(connection.text()).toContain('retry:'));
      connection.socket.destroy();
      await connection.closed;
    }
    await eventually(async () => expect(await openStreams(gateway)).toBe(0));
    const attempts = await Promise.all([1, 2, 3].map(() => attemptEventStream(gateway.url, auth)));
    expect(attempts.map((attempt) => attempt.status)).toEqual([200, 200, 200]);
    await Promise.all(attempts.map((attempt) => attempt.close()));
  });
});

describe('a request pipelined behind a running stream on its connection', () => {
  it('is refused before it runs: a publish behind the stream publishes nothing, and is counted', async () => {
    const gateway = await stack();
    const { authorization } = await gateway.bearer({ sub: 'u-pipelined-publisher', tenant_id: 'acme-behind', roles: ['publisher'] });
    const body = JSON.stringify({ type: 'notice', data: { message: 'never published' } });
    const publish =
      `POST /api/v1/alerts HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const refused = async () => (await gateway.gateway.metrics.sseRequestsRefused.get()).values[0]?.value ?? 0;
    const connection = rawConnection(gateway);
    await once(connection.socket, 'connect');
    connection.socket.write(streamRequest(authorization) + publish);
    await eventually(() => expect(connection.text()).toContain('retry:'));
    await eventually(async () => expect(await refused()).toBe(1));
    // Nothing reached the bus: neither Redis nor the stream itself saw the event.
    expect(await suite.redis.exists('alerts:tenant:acme-behind')).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(connection.text()).not.toContain('never published');
    expect(connection.text().match(/HTTP\/1\.1/g)).toHaveLength(1);
    // The stream is still served: a publish on a connection of its own reaches it.
    const answer = await fetch(`${gateway.url}/api/v1/alerts`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'notice', data: { message: 'published' } }) });
    expect(answer.status).toBe(201);
    await eventually(() => expect(connection.text()).toContain('published'));
    connection.socket.destroy();
    await connection.closed;
  });

  it('gets its 400 after the stream request is refused, and the connection closes', async () => {
    const gateway = await stack();
    const connection = rawConnection(gateway);
    await once(connection.socket, 'connect');
    connection.socket.write(streamRequest('Bearer not-a-token') + 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await connection.closed;
    const statuses = [...connection.text().matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => match[1]);
    expect(statuses).toEqual(['401', '400']);
    const refusal = connection.text().slice(connection.text().lastIndexOf('HTTP/1.1 400'));
    expect(refusal).toContain('cannot be pipelined behind an event stream request');
    // Like every refusal: the request id and the security headers.
    expect(refusal).toMatch(/x-request-id: [0-9a-f-]{36}\r\n/);
    expect(refusal).toContain('x-content-type-options: nosniff');
  });
});

describe('bytes sent after a stream request', () => {
  it('close the connection; no HTTP answer is written into the event stream', async () => {
    const gateway = await stack();
    const { authorization } = await gateway.bearer({ sub: 'u-garbage', tenant_id: 'acme-garbage' });
    const connection = rawConnection(gateway);
    connection.socket.write(streamRequest(authorization));
    await eventually(() => expect(connection.text()).toContain('retry:'));
    connection.socket.write('\u0001 not HTTP at all\r\n\r\n');
    await connection.closed;
    expect(connection.text()).not.toContain('HTTP/1.1 400');
    expect(connection.text().match(/HTTP\/1\.1/g)).toHaveLength(1);
    await eventually(async () => expect(await openStreams(gateway)).toBe(0));
  });
});

describe('a client gone before its stream is set up', () => {
  it('neither subscribes nor asks Redis about its stream', async () => {
    // The gateway's Redis holds every command while the test says so: the client leaves meanwhile.
    const gated = new Redis(suite.server.url());
    let holding = false;
    const held: (() => void)[] = [];
    const keysAsked: string[] = [];
    const send = gated.sendCommand.bind(gated);
    gated.sendCommand = (command: Command, ...rest: unknown[]) => {
      keysAsked.push(...command.args.map(String).filter((arg) => arg.startsWith('alerts:tenant:')));
      if (!holding) return send(command, ...(rest as []));
      held.push(() => void send(command, ...(rest as [])));
      return command.promise;
    };
    try {
      const gateway = await stack({ redis: gated, env: { RATE_LIMIT_ENABLED: 'true' } });
      const { authorization } = await gateway.bearer({ sub: 'u-gone', tenant_id: 'acme-gone' });
      holding = true;
      const connection = rawConnection(gateway);
      connection.socket.write(streamRequest(authorization));
      await eventually(() => expect(held.length).toBeGreaterThan(0));
      connection.socket.destroy();
      const connections = () => new Promise<number>((resolve) => gateway.gateway.app.server.getConnections((_e, n) => resolve(n)));
      await eventually(async () => expect(await connections()).toBe(0));
      holding = false;
      for (const release of held.splice(0)) release();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(keysAsked.filter((key) => key.includes('acme-gone'))).toEqual([]);
      expect(await openStreams(gateway)).toBe(0);
    } finally {
      holding = false;
      for (const release of held.splice(0)) release();
      gated.disconnect();
    }
  });
});

describe('while the Redis bus is unreachable', () => {
  it('a stream of a tenant this instance follows is refused (503), never opened without the events it asked for', async () => {
    const own = await RedisServer.start();
    const ownRedis = new Redis(own.url());
    try {
      const gateway = await stack({ env: { REDIS_URL: own.url() } });
      const claims = { sub: 'u-outage', tenant_id: 'acme-outage' };
      const a = openEventStream(gateway.url, await gateway.bearer(claims));
      await a.opened;
      const ids: string[] = [];
      for (let n = 1; n <= 3; n++) ids.push((await ownRedis.xadd('alerts:tenant:acme-outage', '*', 'type', 'alert', 'data', JSON.stringify({ n })))!);
      await eventually(() => expect(a.received.map((event) => event.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]));

      await own.stop();
      await eventually(async () => {
        const ready = await fetch(`${gateway.url}/health/ready`);
        expect(((await ready.json()) as { dependencies?: { redis?: { status?: string } } }).dependencies?.redis?.status).toBe('down');
      });
      // Reconnecting with an id: the two events after it cannot be read now, so no 200 that skips them.
      const reconnect = await attemptEventStream(gateway.url, { ...(await gateway.bearer(claims)), 'last-event-id': ids[0]! });
      await reconnect.close();
      expect(reconnect).toMatchObject({ status: 503, code: 'EVENTS_UNAVAILABLE' });
      // A new stream: nothing would advance it, as the README says.
      const fresh = await attemptEventStream(gateway.url, await gateway.bearer({ sub: 'u-outage-2', tenant_id: 'acme-outage' }));
      await fresh.close();
      expect(fresh).toMatchObject({ status: 503, code: 'EVENTS_UNAVAILABLE' });
      a.source.close();
    } finally {
      ownRedis.disconnect();
      await own.stop().catch(() => {});
    }
  });
});

describe('a replay that cannot be read', () => {
  it('is a 503 the client retries with the same id, never a 200 that skips the events after it', async () => {
    // The gateway's Redis fails replays (XREVRANGE from an exclusive id) while the test says so.
    const failing = new Redis(suite.server.url());
    let failReplays = false;
    const send = failing.sendCommand.bind(failing);
    failing.sendCommand = (command: Command, ...rest: unknown[]) => {
      if (failReplays && /^xrevrange$/i.test(command.name) && String(command.args[2]).startsWith('(')) {
        command.reject(new Error('replay refused by the test'));
        return command.promise;
      }
      return send(command, ...(rest as []));
    };
    try {
      const gateway = await stack({ redis: failing });
      const claims = { sub: 'u-replay', tenant_id: 'acme-replay' };
      const live = openEventStream(gateway.url, await gateway.bearer(claims));
      await live.opened;
      const ids: string[] = [];
      for (let n = 1; n <= 3; n++) ids.push((await suite.redis.xadd('alerts:tenant:acme-replay', '*', 'type', 'alert', 'data', JSON.stringify({ n })))!);
      await eventually(() => expect(live.received).toHaveLength(3));

      failReplays = true;
      const refused = await attemptEventStream(gateway.url, { ...(await gateway.bearer(claims)), 'last-event-id': ids[0]! });
      await refused.close();
      expect(refused).toMatchObject({ status: 503, code: 'EVENTS_UNAVAILABLE' });
      // Once the replay can be read, the same id gets exactly what it missed.
      failReplays = false;
      const retried = openEventStream(gateway.url, { ...(await gateway.bearer(claims)), 'last-event-id': ids[0]! });
      await retried.opened;
      await eventually(() => expect(retried.received.map((event) => event.data)).toEqual([{ n: 2 }, { n: 3 }]));
      for (const client of [live, retried]) client.source.close();
    } finally {
      failing.disconnect();
    }
  });
});

describe('a stream that ends', () => {
  it('is counted in gateway_requests_total and exports its server span', async () => {
    const spans: { name: string; attributes?: { key: string; value: { intValue?: string | number } }[] }[] = [];
    const collector = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.url === '/v1/traces') {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { resourceSpans?: { scopeSpans?: { spans?: (typeof spans)[number][] }[] }[] };
          spans.push(...(body.resourceSpans ?? []).flatMap((r) => r.scopeSpans ?? []).flatMap((s) => s.spans ?? []));
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    collector.listen(0, '127.0.0.1');
    await once(collector, 'listening');
    try {
      const { port } = collector.address() as { port: number };
      const gateway = await stack({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } });
      const streamRequests = async () =>
        (await gateway.gateway.metrics.requests.get()).values
          .filter((value) => value.labels.route === '/api/v1/alerts/stream' && value.labels.status === '200')
          .reduce((sum, value) => sum + value.value, 0);
      const before = await streamRequests();
      const attempt = await attemptEventStream(gateway.url, await gateway.bearer({ sub: 'u-traced', tenant_id: 'acme-traced' }));
      expect(attempt.status).toBe(200);
      await attempt.close();
      await eventually(async () => expect(await streamRequests()).toBe(before + 1));
      await eventually(() => expect(spans.find((span) => span.name === 'GET /api/v1/alerts/stream')).toBeDefined(), 5_000, 100);
    } finally {
      collector.close();
    }
  });
});

