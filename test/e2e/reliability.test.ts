import { request as httpRequest } from 'node:http';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSubgraphs } from '../../subgraphs/catalogue.js';
import { readSchema, startSubgraph, type RunningSubgraph } from '../../subgraphs/shared/server.js';
import { eventually } from '../helpers/eventually.js';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js';
import { hs256Bearer } from '../helpers/hs256.js';
import { RedisServer } from '../helpers/redis-server.js';
import { openEventStream, type StreamClient } from '../helpers/sse.js';
import { lazyGatewayJwks, writeSupergraph } from '../helpers/stack.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/**
 * One misbehaving caller must not hurt anybody else. For RELIABILITY_SECONDS (60 by default), well-
 * behaved callers of two tenants run GraphQL, REST (with uploads) and event streams against one
 * production gateway process on Redis, while one caller of the same tenant as some of them keeps
 * trying what once broke the gateway for others: `Expect: 100-continue` on a REST service, event
 * stream cursors Redis refuses, uploads that trickle a byte a second and are then dropped, and
 * more event streams than its share. The others must see no 5xx, no stalled request, every event;
 * and the gateway's heap must come back to where it started.
 */
const SECONDS = Number(process.env.RELIABILITY_SECONDS ?? 60);
const SECRET = 'reliability-test-secret-0123456789abcdef';
const METRICS_TOKEN = 'reliability-metrics-token-0123456789';
/** A request slower than this counts as stalled (the service timeout is 30 s; healthy ones take ms). */
const STALLED_MS = 10_000;
const TENANTS = ['acme', 'globex'] as const;

let redis: RedisServer;
let upstream: Upstream;
let subgraphs: RunningSubgraph[] = [];
let gateway: GatewayProcess;
const snapshots = mkdtempSync(join(tmpdir(), 'gw-heap-'));

beforeAll(async () => {
  redis = await RedisServer.start();
  upstream = await startUpstream('users');
  const keys = lazyGatewayJwks();
  const definitions = Object.values(demoSubgraphs).map((factory) => factory());
  subgraphs = await Promise.all(definitions.map((definition) => startSubgraph(definition, { gatewayKey: keys.gatewayKey })));
  const supergraphPath = writeSupergraph(
    subgraphs.map((subgraph, i) => ({ name: subgraph.name, url: subgraph.url, sdl: readSchema(definitions[i]!.schemaFile) })),
  );
  gateway = await spawnGateway({
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    SUPERGRAPH_PATH: supergraphPath,
    REDIS_URL: redis.url(),
    JWT_SECRET: SECRET,
    JWT_ALGORITHMS: 'HS256',
    USERS_SERVICE_URL: upstream.url,
    METRICS_TOKEN,
    RATE_LIMIT_ENABLED: 'true',
    // On, but generous for everyone: the point is isolation, not the limiter.
    GATEWAY_CONFIG: configFile({
      rateLimits: { default: { requests: 1_000_000, windowSeconds: 60 }, authenticated: { requests: 1_000_000, windowSeconds: 60 } },
    }),
    REQUEST_TIMEOUT_MS: '5000',
    // A heap snapshot on SIGUSR2 runs a full garbage collection first: the test's way to compare
    // retained memory, not garbage that happens not to be collected yet.
    NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapshots}`,
  });
  keys.setUrl(gateway.url);
});

afterAll(async () => {
  gateway?.child.kill('SIGTERM');
  await gateway?.exited;
  await Promise.all(subgraphs.map((subgraph) => subgraph.close()));
  await upstream?.close();
  await redis?.stop();
  rmSync(snapshots, { recursive: true, force: true });
});

interface Outcome {
  what: string;
  status: number;
  ms: number;
  /** The machine-readable code of a refusal (problem+json `code`, or the first GraphQL error's). */
  code?: string;
}

function errorCode(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { code?: string; errors?: { extensions?: { code?: string } }[] };
    return parsed.code ?? parsed.errors?.[0]?.extensions?.code;
  } catch {
    return undefined;
  }
}

async function timed(what: string, call: () => Promise<Response>): Promise<Outcome> {
  const started = Date.now();
  try {
    const response = await call();
    const body = await response.text();
    const outcome: Outcome = { what, status: response.status, ms: Date.now() - started };
    if (response.status >= 400) outcome.code = errorCode(body);
    return outcome;
  } catch {
    return { what, status: 0, ms: Date.now() - started }; // a connection the gateway dropped
  }
}

/** A well-behaved user: GraphQL, REST reads and an upload now and then, one request at a time. */
async function behave(authorization: string, until: number, outcomes: Outcome[]): Promise<void> {
  const upload = Buffer.alloc(256 * 1024, 7);
  for (let i = 0; Date.now() < until; i++) {
    outcomes.push(
      await timed('graphql', () =>
        fetch(`${gateway.url}/graphql`, {
          method: 'POST',
          headers: { authorization, 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ products(first: 3) { upc name } }' }),
        }),
      ),
    );
    outcomes.push(await timed('rest', () => fetch(`${gateway.url}/api/v1/users/u-${i % 10}`, { headers: { authorization } })));
    if (i % 5 === 0) {
      outcomes.push(await timed('upload', () => fetch(`${gateway.url}/api/v1/users/upload`, { method: 'POST', headers: { authorization }, body: upload })));
    }
  }
}

/** Raw HTTP, so nothing in a client library smooths over what the misbehaving caller sends. */
function rawGet(path: string, headers: Record<string, string>): Promise<number> {
  const { hostname, port } = new URL(gateway.url);
  return new Promise((resolve) => {
    const req = httpRequest({ host: hostname, port, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(STALLED_MS, () => req.destroy());
    req.end();
  });
}

/** An upload that announces a megabyte and trickles one byte a second until it is dropped. */
function trickleUpload(authorization: string): { drop(): void } {
  const { port } = new URL(gateway.url);
  const socket: Socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  socket.write(
    `POST /api/v1/users/upload HTTP/1.1\r\nhost: localhost\r\nauthorization: ${authorization}\r\n` +
      'content-type: application/octet-stream\r\ncontent-length: 1000000\r\n\r\n',
  );
  const timer = setInterval(() => socket.write('x'), 1_000);
  return {
    drop() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** A stream whose refusal (429 past the caller's share) is expected, not an error of the test. */
function unwatched(stream: StreamClient): { close(): void } {
  stream.opened.catch(() => {});
  return stream.source;
}

/** Everything that once let one caller hurt the others, over and over until `until`. */
async function misbehave(authorization: string, until: number): Promise<void> {
  const openStreams: { close(): void }[] = [];
  while (Date.now() < until) {
    // 1. `Expect: 100-continue` on a REST service (once opened its breaker for everybody).
    await Promise.all(Array.from({ length: 5 }, () => rawGet('/api/v1/users/expect', { authorization, expect: '100-continue' })));
    // 2. Cursors Redis refuses, or far in the future (once stopped every tenant's live events).
    for (const cursor of ['99999999999999999999999-0', '18446744073709551615-18446744073709551615', 'not-an-id']) {
      openStreams.push(unwatched(openEventStream(gateway.url, { authorization, 'last-event-id': cursor })));
    }
    // 5. More streams than a user's share (once took every slot of the tenant).
    for (let i = 0; i < 20; i++) openStreams.push(unwatched(openEventStream(gateway.url, { authorization })));
    // 3. Uploads that trickle and are then dropped (once pinned every upstream connection and
    //    opened the breaker on the client's resets).
    const trickles = Array.from({ length: 40 }, () => trickleUpload(authorization));
    await new Promise((resolve) => setTimeout(resolve, Math.min(8_000, Math.max(0, until - Date.now()))));
    for (const trickle of trickles) trickle.drop();
  }
  for (const stream of openStreams) stream.close();
}

function configFile(content: Record<string, unknown>): string {
  const file = join(snapshots, 'gateway.json');
  writeFileSync(file, JSON.stringify(content));
  return file;
}

/** Heap in use after a full collection (forced by a heap snapshot, deleted once written). */
async function retainedHeapBytes(): Promise<number> {
  const before = new Set(readdirSync(snapshots));
  gateway.child.kill('SIGUSR2');
  let lastSize = -1;
  await eventually(
    () => {
      const file = readdirSync(snapshots).find((name) => !before.has(name) && name.endsWith('.heapsnapshot'));
      if (!file) throw new Error('no heap snapshot yet');
      const size = statSync(join(snapshots, file)).size;
      const settled = size > 0 && size === lastSize;
      lastSize = size;
      if (!settled) throw new Error('heap snapshot still being written');
      rmSync(join(snapshots, file));
    },
    undefined,
    500,
  );
  return heapUsedBytes();
}

async function heapUsedBytes(): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
  const line = text.split('\n').find((l) => l.startsWith('nodejs_heap_size_used_bytes '));
  if (!line) throw new Error('no nodejs_heap_size_used_bytes in /metrics');
  return Number(line.split(' ')[1]);
}

describe(`one misbehaving caller for ${SECONDS} s`, () => {
  it('costs the other callers nothing: no 5xx, no stall, every event, and memory comes back', async () => {
    const users = await Promise.all(
      Array.from({ length: 6 }, (_, i) => {
        const tenant = TENANTS[i % 2]!;
        return hs256Bearer(SECRET, `good-${tenant}-${i}`, { tenant_id: tenant }).then((authorization) => ({ tenant, authorization }));
      }),
    );
    const publishers = Object.fromEntries(
      await Promise.all(
        TENANTS.map(async (tenant) => [tenant, await hs256Bearer(SECRET, `publisher-${tenant}`, { tenant_id: tenant, roles: ['publisher'] })] as const),
      ),
    );
    const mallory = await hs256Bearer(SECRET, 'mallory', { tenant_id: 'acme' });

    // Warm up (first requests compile plans, fill caches), then take the heap baseline.
    const warmup: Outcome[] = [];
    await Promise.all(users.map((user) => behave(user.authorization, Date.now() + 2_000, warmup)));
    const heapBefore = await retainedHeapBytes();

    const streams: { tenant: string; client: StreamClient }[] = users.map((user) => ({
      tenant: user.tenant,
      client: openEventStream(gateway.url, { authorization: user.authorization }),
    }));
    await Promise.all(streams.map((s) => s.client.opened));

    const until = Date.now() + SECONDS * 1000;
    const outcomes: Outcome[] = [];
    const published: Record<string, number[]> = { acme: [], globex: [] };
    const publishing = (async () => {
      for (let n = 0; Date.now() < until; n++) {
        for (const tenant of TENANTS) {
          const response = await timed('publish', () =>
            fetch(`${gateway.url}/api/v1/alerts`, {
              method: 'POST',
              headers: { authorization: publishers[tenant]!, 'content-type': 'application/json' },
              body: JSON.stringify({ type: 'alert', data: { tenant, n } }),
            }),
          );
          outcomes.push(response);
          if (response.status === 201) published[tenant]!.push(n);
        }
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    })();
    await Promise.all([...users.map((user) => behave(user.authorization, until, outcomes)), misbehave(mallory, until), publishing]);

    // No 5xx and no dropped connection for anybody but the misbehaving caller, nothing stalled.
    const failed = outcomes.filter((o) => o.status === 0 || o.status >= 500);
    const errorLogs = gateway.logs.filter((line) => Number(line.level) >= 50).slice(0, 3);
    expect(failed, `${JSON.stringify(failed.slice(0, 5))} gateway exit: ${gateway.child.exitCode}, errors: ${JSON.stringify(errorLogs)}`).toEqual([]);
    const refused = outcomes.filter((o) => o.status !== 200 && o.status !== 201);
    expect(refused.slice(0, 5), `${refused.length} refused`).toEqual([]);
    const slowest = Math.max(...outcomes.map((o) => o.ms));
    expect(slowest).toBeLessThan(STALLED_MS);
    expect(outcomes.length).toBeGreaterThan(SECONDS * 6);

    // Every event reached every subscriber of its tenant, and only those.
    for (const { tenant, client } of streams) {
      await eventually(() => expect(client.received.map((e) => (e.data as { n: number }).n)).toEqual(published[tenant]));
      expect(client.received.every((e) => (e.data as { tenant: string }).tenant === tenant)).toBe(true);
      client.source.close();
    }

    // The misbehaving caller's leftovers are released: the heap returns to within 20% of its start.
    expect(await retainedHeapBytes()).toBeLessThan(heapBefore * 1.2);

    // And the REST service's breaker never opened on the misbehaving caller's account.
    const after = await timed('rest', () => fetch(`${gateway.url}/api/v1/users/after`, { headers: { authorization: users[0]!.authorization } }));
    expect(after.status).toBe(200);
  });
});
