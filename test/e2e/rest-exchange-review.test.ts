import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { accountsSubgraph } from '../../subgraphs/accounts/index.js';
import { eventually } from '../helpers/eventually.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { rawRequest } from '../helpers/upstream.js';

/**
 * The review of the dispatch-handler forwarding path (exchange.ts), replayed against the real gateway
 * and an upstream written on raw TCP, so it can answer exactly what node:http would refuse to send
 * (a 304 with a Content-Length, a 103 before the final status, a reset on the first request only).
 */

const BLOCK = Buffer.alloc(256 * 1024, 97);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The connections currently streaming /big, across both instances. */
const streaming = new Set<Socket>();
/** /flaky resets the first request it sees (on whichever instance), then streams like /big. */
let flakySeen = 0;
/** The 103 went out for /hints; calling this sends the final status. */
let finishHints: (() => void) | null = null;

function streamBig(socket: Socket): void {
  streaming.add(socket);
  socket.once('close', () => streaming.delete(socket));
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BLOCK.length * 400}\r\n\r\n`);
  let sent = 0;
  const pump = () => {
    while (sent < 400) {
      sent++;
      if (!socket.write(BLOCK)) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

function answer(socket: Socket, path: string): void {
  if (path.endsWith('/flaky')) {
    if (flakySeen++ === 0) socket.resetAndDestroy();
    else streamBig(socket);
  } else if (path.endsWith('/304')) {
    socket.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n');
  } else if (path.endsWith('/204')) {
    socket.write('HTTP/1.1 204 No Content\r\nX-Done: yes\r\nContent-Length: 5\r\n\r\n');
  } else if (path.endsWith('/fail')) {
    socket.write('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom');
  } else if (path.endsWith('/hints')) {
    socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n');
    finishHints = () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  } else if (path.endsWith('/truncated')) {
    // The head and the first bytes of a body it promised to be longer, then the connection drops.
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nfirst bytes');
    setTimeout(() => socket.destroy(), 50);
  } else if (path.endsWith('/reset-now')) {
    socket.resetAndDestroy();
  } else if (path.endsWith('/headers-first')) {
    // Answers before reading the upload: chunked, no body byte yet.
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  } else {
    socket.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  }
}

async function rawUpstream(): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end !== -1; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        answer(socket, head.split(' ')[1] ?? '/');
        // An upload's body is read and dropped: nothing after it on this connection is a request here.
        if (head.startsWith('POST ')) {
          socket.off('data', onData);
          socket.on('data', () => {});
          return;
        }
      }
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as { port: number }).port}`;

/** A client on a plain socket that sends exactly `request` and records everything it gets. */
async function rawClient(base: string, request: string) {
  const { hostname, port } = new URL(base);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  const client = { text: '', closed: false, socket };
  socket.on('data', (chunk: Buffer) => (client.text += chunk.toString('latin1')));
  socket.on('close', () => (client.closed = true));
  socket.on('error', () => {});
  socket.write(request);
  return client;
}

describe('review 3: the dispatch-handler exchange', () => {
  let stack: Stack;
  let first: Server;
  let second: Server;

  beforeAll(async () => {
    first = await rawUpstream();
    second = await rawUpstream();
    const file = join(mkdtempSync(join(tmpdir(), 'gw-exchange-')), 'gateway.yaml');
    writeFileSync(
      file,
      stringify({
        services: {
          // A body timeout far longer than the test waits: only an abort can free the connection.
          flaky: { upstreams: [{ url: urlOf(first) }, { url: urlOf(second) }], retries: 1, timeoutMs: 30_000 },
          raw: { upstreams: [{ url: urlOf(first) }], retries: 0, timeoutMs: 5_000 },
          hints: {
            upstreams: [{ url: urlOf(first) }],
            retries: 0,
            timeoutMs: 5_000,
            circuitBreaker: { failureThreshold: 1, resetTimeoutMs: 200 },
          },
        },
        routes: [
          { prefix: '/api/v1/flaky', service: 'flaky', auth: 'public' },
          { prefix: '/api/v1/raw', service: 'raw', auth: 'public' },
          { prefix: '/api/v1/hints', service: 'hints', auth: 'public' },
        ],
      }),
    );
    stack = await startStack({
      definitions: [accountsSubgraph()],
      env: { NODE_ENV: 'production', GATEWAY_CONFIG: file, REQUEST_BODY_TIMEOUT_MS: '500' },
    });
  });
  afterAll(async () => {
    await stack.close();
    for (const server of [first, second]) server.close();
    for (const socket of streaming) socket.destroy();
  });

  it('a client that leaves a retried download aborts the retry: its upstream connection is freed', async () => {
    const client = await rawClient(stack.url, 'GET /api/v1/flaky/flaky HTTP/1.1\r\nHost: gw.test\r\n\r\n');
    client.socket.pause();
    // The first attempt was reset; the retry streams, held back by the client not reading.
    await eventually(() => expect(streaming.size).toBe(1));
    expect(flakySeen).toBe(2);
    client.socket.destroy();
    // Well inside the service's 30 s timeout, and undici suspends that clock while paused anyway.
    await eventually(() => expect(streaming.size).toBe(0), 5_000);
    const instances = stack.gateway.rest.pools.get('flaky')!.instances;
    expect(instances.map((instance) => instance.active)).toEqual([0, 0]);
  });

  it('an upstream body that breaks off after bytes reached the client cuts the client\'s response short: never a clean end', async () => {
    const client = await rawClient(stack.url, 'GET /api/v1/raw/truncated HTTP/1.1\r\nHost: gw.test\r\n\r\n');
    await eventually(() => expect(client.closed).toBe(true));
    const [head, body] = client.text.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head).toMatch(/\r\ncontent-length: 1000/i);
    // What arrived, and no more: the connection closed before the promised 1000 bytes, so the client
    // knows the body is incomplete (a 502 cannot follow a 200 already sent).
    expect(body).toBe('first bytes');
    // The gateway carries on.
    expect((await rawRequest(stack.url, '/api/v1/raw/204')).status).toBe(204);
  });

  it('a 304 or 204 with a Content-Length is passed on, not a 502, and not counted against the service', async () => {
    const notModified = await rawRequest(stack.url, '/api/v1/raw/304');
    expect(notModified.status).toBe(304);
    expect(notModified.headers.etag).toBe('"v1"');
    const noContent = await rawRequest(stack.url, '/api/v1/raw/204');
    expect(noContent.status).toBe(204);
    expect(noContent.headers['x-done']).toBe('yes');
    // The same keep-alive connection carries the next request: the 304 ended cleanly.
    const client = await rawClient(stack.url, 'GET /api/v1/raw/304 HTTP/1.1\r\nHost: gw.test\r\n\r\n');
    try {
      await eventually(() => expect(client.text).toMatch(/^HTTP\/1\.1 304 /));
      client.socket.write('GET /api/v1/raw/204 HTTP/1.1\r\nHost: gw.test\r\n\r\n');
      await eventually(() => expect(client.text).toMatch(/HTTP\/1\.1 204 /));
      expect(client.closed).toBe(false);
    } finally {
      client.socket.destroy();
    }
    await sleep(100);
    expect(stack.gateway.rest.pools.get('raw')!.instances[0]!.consecutiveFailures).toBe(0);
    expect(stack.gateway.rest.breakers.get('raw')!.state).toBe('closed');
  });

  it('a 103 before the final status is not an outcome: a half-open probe stays a probe until the final status', async () => {
    const breaker = stack.gateway.rest.breakers.get('hints')!;
    expect((await rawRequest(stack.url, '/api/v1/hints/fail')).status).toBe(500);
    expect(breaker.state).toBe('open');
    await sleep(300);
    const probe = rawRequest(stack.url, '/api/v1/hints/hints');
    await eventually(() => expect(finishHints).not.toBeNull());
    await sleep(100);
    expect(breaker.state).toBe('half-open');
    finishHints!();
    const response = await probe;
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('ok');
    expect(breaker.state).toBe('closed');
  });

  it("a gateway answer given while the upload is unread closes the connection (the body's rest is not a request)", async () => {
    const client = await rawClient(
      stack.url,
      'POST /api/v1/raw/reset-now HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n' +
        'a'.repeat(1000),
    );
    try {
      await eventually(() => expect(client.text).toMatch(/^HTTP\/1\.1 502 /));
      expect(client.text.toLowerCase()).toContain('connection: close');
      await eventually(() => expect(client.closed).toBe(true));
    } finally {
      client.socket.destroy();
    }
  });

  it('an upload that stops arriving after the upstream sent its headers gets 408, not a 502 against the service', async () => {
    const pool = stack.gateway.rest.pools.get('raw')!;
    const client = await rawClient(
      stack.url,
      'POST /api/v1/raw/headers-first HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n' +
        'a'.repeat(1000),
    );
    try {
      await eventually(() => expect(client.text).toMatch(/^HTTP\/1\.1 \d{3} /));
      expect(client.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(client.text).toContain('REQUEST_TIMEOUT');
      expect(client.text.toLowerCase()).toContain('connection: close');
    } finally {
      client.socket.destroy();
    }
    // The upstream's 200 head was its success; the client's stalled body must not undo it.
    await sleep(100);
    expect(pool.instances[0]!.consecutiveFailures).toBe(0);
    expect(stack.gateway.rest.breakers.get('raw')!.state).toBe('closed');
  });
});
